// peerd's stream framing, as the daemon speaks it on every WebTransport
// stream: 1 byte type, 4 bytes big-endian length, then the payload.

export const HEADER = 0x01;
export const MESSAGE = 0x02;
export const STATUS = 0x03;

export const MAX_MESSAGE_LEN = 4 * 1024 * 1024;
export const MAX_CONTROL_LEN = 65536; // HEADER and STATUS

export interface Frame {
  type: number;
  payload: Uint8Array;
}

export function maxPayloadLen(type: number): number {
  switch (type) {
    case MESSAGE:
      return MAX_MESSAGE_LEN;
    case HEADER:
    case STATUS:
      return MAX_CONTROL_LEN;
    default:
      throw new FrameError(`unknown frame type 0x${type.toString(16).padStart(2, "0")}`);
  }
}

export class FrameError extends Error {}

export function encodeFrame(type: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  if (payload.length > maxPayloadLen(type)) {
    throw new FrameError(`a frame of ${payload.length} bytes is over the limit of ${maxPayloadLen(type)} bytes`);
  }
  // One buffer per frame: a stream write is then never a partial frame, so
  // writes from concurrent tasks (a handler and its deadline) cannot interleave.
  const out = new Uint8Array(5 + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length, false);
  out.set(payload, 5);
  return out;
}

// Reads frames from a stream whose chunks split and join frames arbitrarily.
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  // The next frame, or null when the stream ends cleanly between frames.
  async next(): Promise<Frame | null> {
    if (!(await this.fill(5))) {
      if (this.buffered === 0) return null;
      throw new FrameError("the stream ended inside a frame header");
    }
    const head = this.take(5);
    const type = head[0];
    const len = new DataView(head.buffer, head.byteOffset, 5).getUint32(1, false);
    const max = maxPayloadLen(type);
    // Refused before reading it: a hostile length must not make us buffer 4 GiB.
    if (len > max) throw new FrameError(`a frame declares ${len} bytes, over the limit of ${max}`);
    if (!(await this.fill(len))) throw new FrameError("the stream ended inside a frame");
    return { type, payload: this.take(len) };
  }

  cancel(reason?: unknown): Promise<void> {
    return this.reader.cancel(reason).catch(() => {});
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.ended) return false;
      const { done, value } = await this.reader.read();
      if (done) {
        this.ended = true;
        continue;
      }
      if (value.length) {
        this.chunks.push(value);
        this.buffered += value.length;
      }
    }
    return true;
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
