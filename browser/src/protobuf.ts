// A minimal proto3 encoder/decoder for the few messages a browser agent
// exchanges with peerd (RequestHeader, Status, Challenge, Proof): varints,
// length-delimited bytes/strings and map<string,string> entries. Unknown
// fields are skipped, as proto3 requires.

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export class ProtoWriter {
  private parts: number[] = [];

  varint(value: number): this {
    // Arithmetic, not bit operators: uint64 values up to 2^53 must survive.
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`cannot encode ${value} as a varint`);
    while (value >= 0x80) {
      this.parts.push((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.parts.push(value);
    return this;
  }

  private tag(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  // proto3 leaves default values (0, empty) off the wire.
  uint(field: number, value: number): this {
    return value === 0 ? this : this.tag(field, 0).varint(value);
  }

  bytes(field: number, value: Uint8Array, always = false): this {
    if (value.length === 0 && !always) return this;
    this.tag(field, 2).varint(value.length);
    for (const b of value) this.parts.push(b);
    return this;
  }

  string(field: number, value: string, always = false): this {
    return this.bytes(field, utf8.encode(value), always);
  }

  map(field: number, entries: Record<string, string> | undefined): this {
    for (const [k, v] of Object.entries(entries ?? {})) {
      this.bytes(field, new ProtoWriter().string(1, k).string(2, v).finish(), true);
    }
    return this;
  }

  finish(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.parts);
  }
}

export type FieldValue = { wireType: 0; value: number } | { wireType: 2; value: Uint8Array };

// Decodes a message into field number → values in wire order (repeated fields keep them all).
export function decodeFields(buf: Uint8Array): Map<number, FieldValue[]> {
  const fields = new Map<number, FieldValue[]>();
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error("protobuf: truncated varint");
      const b = buf[pos++];
      result += (b & 0x7f) * scale;
      scale *= 0x80;
      if (b < 0x80) return result; // values past 2^53 lose precision; none of ours get there
    }
    throw new Error("protobuf: varint longer than 10 bytes");
  };
  const skip = (n: number) => {
    if (pos + n > buf.length) throw new Error("protobuf: truncated field");
    pos += n;
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new Error("protobuf: field number 0");
    let value: FieldValue | undefined;
    switch (wireType) {
      case 0:
        value = { wireType: 0, value: varint() };
        break;
      case 1:
        skip(8);
        break;
      case 2: {
        const len = varint();
        const start = pos;
        skip(len);
        value = { wireType: 2, value: buf.subarray(start, start + len) };
        break;
      }
      case 5:
        skip(4);
        break;
      default:
        throw new Error(`protobuf: unsupported wire type ${wireType}`);
    }
    if (value) {
      const list = fields.get(field) ?? [];
      list.push(value);
      fields.set(field, list);
    }
  }
  return fields;
}

export class ProtoMessage {
  private readonly fields: Map<number, FieldValue[]>;
  constructor(buf: Uint8Array) {
    this.fields = decodeFields(buf);
  }

  private all(field: number, wireType: 0 | 2): FieldValue[] {
    const list = this.fields.get(field) ?? [];
    for (const v of list) {
      if (v.wireType !== wireType) throw new Error(`protobuf: field ${field} has the wrong wire type`);
    }
    return list;
  }

  // proto3: the last value of a scalar field wins.
  uint(field: number): number {
    const list = this.all(field, 0);
    return list.length ? (list[list.length - 1].value as number) : 0;
  }

  bytes(field: number): Uint8Array {
    const list = this.all(field, 2);
    return list.length ? (list[list.length - 1].value as Uint8Array) : new Uint8Array(0);
  }

  string(field: number): string {
    return utf8Decoder.decode(this.bytes(field));
  }

  strings(field: number): string[] {
    return this.all(field, 2).map((v) => utf8Decoder.decode(v.value as Uint8Array));
  }

  map(field: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.all(field, 2)) {
      const m = new ProtoMessage(entry.value as Uint8Array);
      out[m.string(1)] = m.string(2);
    }
    return out;
  }
}

export interface RequestHeader {
  method: string;
  timeoutMicros: number;
  metadata: Record<string, string>;
}

export function encodeRequestHeader(h: RequestHeader): Uint8Array<ArrayBuffer> {
  return new ProtoWriter().string(1, h.method).uint(2, h.timeoutMicros).map(3, h.metadata).finish();
}

export function decodeRequestHeader(buf: Uint8Array): RequestHeader {
  const m = new ProtoMessage(buf);
  return { method: m.string(1), timeoutMicros: m.uint(2), metadata: m.map(3) };
}

export interface Status {
  code: number;
  message: string;
  metadata: Record<string, string>;
}

export function encodeStatus(s: { code: number; message?: string; metadata?: Record<string, string> }): Uint8Array<ArrayBuffer> {
  return new ProtoWriter().uint(1, s.code).string(2, s.message ?? "").map(3, s.metadata).finish();
}

export function decodeStatus(buf: Uint8Array): Status {
  const m = new ProtoMessage(buf);
  return { code: m.uint(1), message: m.string(2), metadata: m.map(3) };
}

export interface Challenge {
  nonce: Uint8Array;
  host: Uint8Array;
  certificateHash: Uint8Array;
}

export function encodeChallenge(c: Challenge): Uint8Array<ArrayBuffer> {
  return new ProtoWriter().bytes(1, c.nonce).bytes(2, c.host).bytes(3, c.certificateHash).finish();
}

export function decodeChallenge(buf: Uint8Array): Challenge {
  const m = new ProtoMessage(buf);
  return { nonce: m.bytes(1), host: m.bytes(2), certificateHash: m.bytes(3) };
}

export interface Proof {
  nodeId: Uint8Array;
  signature: Uint8Array;
  datagramServices: string[];
}

export function encodeProof(p: Proof): Uint8Array<ArrayBuffer> {
  const w = new ProtoWriter().bytes(1, p.nodeId).bytes(2, p.signature);
  for (const s of p.datagramServices) w.string(3, s, true);
  return w.finish();
}

export function decodeProof(buf: Uint8Array): Proof {
  const m = new ProtoMessage(buf);
  return { nodeId: m.bytes(1), signature: m.bytes(2), datagramServices: m.strings(3) };
}

// The tests' messages: one field 1 string.
export function encodeStringMessage(s: string): Uint8Array<ArrayBuffer> {
  return new ProtoWriter().string(1, s).finish();
}

export function decodeStringMessage(buf: Uint8Array): string {
  return new ProtoMessage(buf).string(1);
}
