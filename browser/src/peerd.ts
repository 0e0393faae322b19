// The peerd browser agent: a web page that joins a local peerd daemon over
// WebTransport, proves it holds an Ed25519 key, then calls and serves methods
// and exchanges datagrams with other nodes through the daemon.

import { FrameReader, encodeFrame, HEADER, MESSAGE, STATUS } from "./frames.js";
import {
  decodeChallenge,
  decodeRequestHeader,
  decodeStatus,
  encodeProof,
  encodeRequestHeader,
  encodeStatus,
  type Challenge,
} from "./protobuf.js";
import { nodeIdFromText, nodeIdToText, NODE_ID_BYTES } from "./nodeid.js";

export { nodeIdFromText, nodeIdToText } from "./nodeid.js";
export { encodeStringMessage, decodeStringMessage } from "./protobuf.js";

// gRPC status codes, as peerd uses them.
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export class PeerdError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
    this.name = "PeerdError";
  }
  override toString(): string {
    return `PeerdError ${this.code}: ${this.message}`;
  }
}

export interface ConnectOptions {
  /** The daemon's info URL, e.g. http://127.0.0.1:9733/browser. */
  info: string;
  /** The page's identity; a fresh key pair is generated when absent. */
  keyPair?: CryptoKeyPair;
  /** Services whose datagrams this page receives (see onDatagram). */
  datagramServices?: string[];
  /** For tests: claim another key than the one that signs. */
  forge?: { nodeId?: Uint8Array };
  /** Attempts in all when the daemon's certificate does not match (default 3). */
  attempts?: number;
}

export interface CallOptions {
  /** The call's deadline, from now (default 30 s). */
  timeoutMs?: number;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface IncomingCall {
  caller: string;
  method: string;
  metadata: Record<string, string>;
  /** ms since the epoch; Infinity when the caller set none. */
  deadline: number;
}

export type Handler = (
  requests: AsyncIterable<Uint8Array>,
  call: IncomingCall,
) => Promise<Uint8Array | Uint8Array[] | AsyncIterable<Uint8Array>>;

export interface DatagramStats {
  sent: number;
  dropped: number;
  received: number;
}

interface DaemonInfo {
  node_id: string;
  url: string;
  certificate_hashes: string[];
}

type Requests = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const DEFAULT_TIMEOUT_MS = 30_000;
const PROOF_DOMAIN = new TextEncoder().encode("peerd-browser-v1");
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Connects to the daemon named by `info` and proves the page's key; resolves once accepted. */
export async function connect(options: ConnectOptions): Promise<Agent> {
  const keyPair =
    options.keyPair ??
    ((await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair);
  const attempts = options.attempts ?? 3;
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await connectOnce(options, keyPair);
    } catch (e) {
      last = e;
      // Only a certificate mismatch is worth retrying: the daemon may have
      // rotated its certificate between our fetch of the info and the handshake.
      if (!(e instanceof CertificateError)) throw e;
    }
  }
  throw last instanceof CertificateError ? new PeerdError(Code.UNAVAILABLE, `${last.message} (after ${attempts} attempts)`) : last;
}

class CertificateError extends Error {}

async function fetchInfo(url: string): Promise<DaemonInfo> {
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (e) {
    throw new PeerdError(Code.UNAVAILABLE, `cannot fetch the daemon's info from ${url}: ${String(e)}`);
  }
  if (!response.ok) throw new PeerdError(Code.UNAVAILABLE, `the daemon's info at ${url} answered HTTP ${response.status}`);
  let info: DaemonInfo;
  try {
    info = (await response.json()) as DaemonInfo;
  } catch (e) {
    throw new PeerdError(Code.INTERNAL, `the daemon's info at ${url} is not JSON: ${String(e)}`);
  }
  if (typeof info.node_id !== "string" || typeof info.url !== "string" || !Array.isArray(info.certificate_hashes)) {
    throw new PeerdError(Code.INTERNAL, `the daemon's info at ${url} lacks node_id, url or certificate_hashes`);
  }
  return info;
}

async function connectOnce(options: ConnectOptions, keyPair: CryptoKeyPair): Promise<Agent> {
  const info = await fetchInfo(options.info);
  const host = nodeIdFromText(info.node_id);
  const hashes = info.certificate_hashes.map(hexToBytes);
  const session = new WebTransport(info.url, {
    serverCertificateHashes: hashes.map((value) => ({ algorithm: "sha-256", value })),
  });
  session.closed.catch(() => {}); // observed by the Agent; avoid an unhandled rejection meanwhile
  try {
    try {
      await session.ready;
    } catch (e) {
      // The browser says only "handshake failed"; an unknown certificate is its likely cause.
      throw new CertificateError(`cannot open a WebTransport session to ${info.url}: ${String(e)}`);
    }
    const control = await session.createBidirectionalStream();
    const writer = control.writable.getWriter();
    const reader = new FrameReader(control.readable.getReader());

    const challengeFrame = await readControl(reader, "a challenge");
    if (challengeFrame.type !== MESSAGE) throw new PeerdError(Code.INTERNAL, "the daemon sent no challenge");
    const challenge = decodeChallenge(challengeFrame.payload);
    if (!equal(challenge.host, host)) {
      throw new PeerdError(Code.UNAUTHENTICATED, "the daemon's challenge names another host");
    }
    if (!hashes.some((h) => equal(h, challenge.certificateHash))) {
      throw new CertificateError("the daemon's challenge names another certificate");
    }
    if (challenge.nonce.length !== 32) throw new PeerdError(Code.INTERNAL, "the daemon's challenge nonce is not 32 bytes");

    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
    const signature = new Uint8Array(
      await crypto.subtle.sign({ name: "Ed25519" }, keyPair.privateKey, proofMessage(challenge)),
    );
    const nodeId = options.forge?.nodeId ?? publicKey;
    const datagramServices = options.datagramServices ?? [];
    await writer.write(encodeFrame(MESSAGE, encodeProof({ nodeId, signature, datagramServices })));

    const statusFrame = await readControl(reader, "its verdict on the proof");
    if (statusFrame.type !== STATUS) throw new PeerdError(Code.INTERNAL, "the daemon answered the proof without a status");
    const status = decodeStatus(statusFrame.payload);
    if (status.code !== Code.OK) {
      if (/certificate/i.test(status.message)) throw new CertificateError(status.message);
      throw new PeerdError(status.code, status.message, status.metadata);
    }
    return new Agent(session, writer, reader, nodeIdToText(nodeId), info.node_id, bytesToHex(challenge.certificateHash));
  } catch (e) {
    try {
      session.close();
    } catch {
      // a session that never opened cannot be closed
    }
    throw e;
  }
}

async function readControl(reader: FrameReader, what: string) {
  let frame;
  try {
    frame = await reader.next();
  } catch (e) {
    throw new PeerdError(Code.UNAVAILABLE, `the daemon closed the session before sending ${what}: ${String(e)}`);
  }
  if (!frame) throw new PeerdError(Code.UNAVAILABLE, `the daemon closed the session before sending ${what}`);
  return frame;
}

/** The 112 bytes the page signs: domain ‖ host ‖ nonce ‖ certificate hash. */
export function proofMessage(c: Challenge): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(PROOF_DOMAIN.length + 96);
  out.set(PROOF_DOMAIN, 0);
  out.set(c.host, 16);
  out.set(c.nonce, 48);
  out.set(c.certificateHash, 80);
  return out;
}

export class Agent {
  /** The page's NodeId text form. */
  readonly id: string;
  /** The daemon's NodeId text form. */
  readonly host: string;
  /** Hex SHA-256 of the certificate the daemon's challenge named. */
  readonly certificateHash: string;
  /** Resolves when the session ends, for whatever reason. */
  readonly closed: Promise<{ closeCode?: number; reason?: string; error?: string }>;

  private readonly handlers = new Map<string, Handler>();
  private readonly datagramHandlers = new Map<string, (from: string, message: Uint8Array) => void>();
  private readonly datagramWriter: WritableStreamDefaultWriter<Uint8Array>;
  private readonly stats: DatagramStats = { sent: 0, dropped: 0, received: 0 };
  private isClosed = false;

  constructor(
    private readonly session: WebTransport,
    // Held open: closing the control stream ends the session.
    private readonly control: WritableStreamDefaultWriter<Uint8Array>,
    controlReader: FrameReader,
    id: string,
    host: string,
    certificateHash: string,
  ) {
    this.id = id;
    this.host = host;
    this.certificateHash = certificateHash;
    this.closed = session.closed.then(
      (info) => ({ closeCode: info.closeCode, reason: info.reason }),
      (e) => ({ error: String(e) }),
    );
    this.closed.then(() => (this.isClosed = true));
    // The spec now prefers createWritable(); Chromium has long had .writable.
    const datagrams = session.datagrams as WebTransportDatagramDuplexStream & { createWritable?: () => WritableStream };
    this.datagramWriter = (datagrams.writable ?? datagrams.createWritable!()).getWriter();
    this.datagramWriter.closed.catch(() => {});
    void this.acceptCalls();
    void this.receiveDatagrams();
    // The daemon says nothing more on the control stream; keep reading so a
    // stray frame cannot stall it, and let the session's end speak for itself.
    void controlReader.next().catch(() => {});
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.control.close().catch(() => {});
    try {
      this.session.close();
    } catch {
      // already closed
    }
  }

  // ---- calls from the page ----

  async unary(node: string, method: string, request: Uint8Array, opts?: CallOptions): Promise<Uint8Array> {
    return single(this.call(node, method, [request], opts), Code.INTERNAL);
  }

  serverStreaming(node: string, method: string, request: Uint8Array, opts?: CallOptions): AsyncIterable<Uint8Array> {
    return this.call(node, method, [request], opts);
  }

  async clientStreaming(node: string, method: string, requests: Requests, opts?: CallOptions): Promise<Uint8Array> {
    return single(this.call(node, method, requests, opts), Code.INTERNAL);
  }

  bidiStreaming(node: string, method: string, requests: Requests, opts?: CallOptions): AsyncIterable<Uint8Array> {
    return this.call(node, method, requests, opts);
  }

  private async *call(node: string, method: string, requests: Requests, opts: CallOptions = {}): AsyncGenerator<Uint8Array> {
    parseNode(node); // a malformed id fails here, not at the daemon
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let stream: WebTransportBidirectionalStream;
    try {
      stream = await this.session.createBidirectionalStream();
    } catch (e) {
      throw new PeerdError(Code.UNAVAILABLE, `cannot open a call stream: ${String(e)}`);
    }
    const writer = stream.writable.getWriter();
    const reader = new FrameReader(stream.readable.getReader());

    // The deadline and the caller's signal both end the call the same way: abort both directions.
    let failure: PeerdError | undefined;
    let fail!: (e: PeerdError) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => {});
    const stop = (e: PeerdError) => {
      if (failure) return;
      failure = e;
      writer.abort(e).catch(() => {});
      void reader.cancel(e);
      fail(e);
    };
    const timer = setTimeout(() => stop(new PeerdError(Code.DEADLINE_EXCEEDED, `the call to ${method} passed its deadline of ${timeoutMs} ms`)), timeoutMs);
    const onAbort = () => stop(new PeerdError(Code.CANCELLED, `the call to ${method} was cancelled`));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener("abort", onAbort);

    let finished = false;
    try {
      const header = encodeRequestHeader({
        method,
        timeoutMicros: Math.max(0, Math.round(timeoutMs * 1000)),
        metadata: { ...opts.metadata, "peerd-node": node },
      });
      // Requests go out while responses come in: a bidi stream's peer may answer before we finish.
      const sending = (async () => {
        await writer.write(encodeFrame(HEADER, header));
        for await (const request of requests as AsyncIterable<Uint8Array>) {
          if (failure) return;
          await writer.write(encodeFrame(MESSAGE, request));
        }
        await writer.close();
      })();
      // A send fails when the daemon ends the call early; its STATUS says why, so read on.
      sending.catch(() => {});

      for (;;) {
        let frame;
        try {
          frame = await Promise.race([reader.next(), failed]);
        } catch (e) {
          if (failure) throw failure;
          throw new PeerdError(Code.UNAVAILABLE, `the call to ${method} broke: ${String(e)}`);
        }
        if (failure) throw failure;
        if (!frame) throw new PeerdError(Code.UNAVAILABLE, "the daemon closed the call without a status");
        if (frame.type === MESSAGE) {
          yield frame.payload;
        } else if (frame.type === STATUS) {
          finished = true;
          const status = decodeStatus(frame.payload);
          if (status.code !== Code.OK) throw new PeerdError(status.code, status.message, status.metadata);
          return;
        } else {
          throw new PeerdError(Code.INTERNAL, `the daemon sent an unexpected frame of type ${frame.type} in a call`);
        }
      }
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (!finished && !failure) {
        // The consumer stopped early or the call broke: release the stream.
        failure = new PeerdError(Code.CANCELLED, "the call ended early");
        writer.abort().catch(() => {});
        void reader.cancel();
      }
    }
  }

  // ---- calls to the page ----

  serve(method: string, handler: Handler): void {
    this.handlers.set(method, handler);
  }

  serveUnary(method: string, handler: (request: Uint8Array, call: IncomingCall) => Promise<Uint8Array>): void {
    this.serve(method, async (requests, call) => handler(await single(requests, Code.INVALID_ARGUMENT), call));
  }

  private async acceptCalls(): Promise<void> {
    const incoming = this.session.incomingBidirectionalStreams.getReader() as ReadableStreamDefaultReader<WebTransportBidirectionalStream>;
    try {
      for (;;) {
        const { done, value } = await incoming.read();
        if (done) return;
        void this.answer(value);
      }
    } catch {
      // the session ended
    }
  }

  private async answer(stream: WebTransportBidirectionalStream): Promise<void> {
    const writer = stream.writable.getWriter();
    const reader = new FrameReader(stream.readable.getReader());
    let answered = false;
    const finish = async (code: number, message: string) => {
      if (answered) return;
      answered = true;
      try {
        await writer.write(encodeFrame(STATUS, encodeStatus({ code, message })));
        await writer.close();
      } catch {
        // the caller went away; nothing to tell it
      }
      void reader.cancel();
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const first = await reader.next();
      if (!first || first.type !== HEADER) return finish(Code.INVALID_ARGUMENT, "a call must start with a header");
      const header = decodeRequestHeader(first.payload);
      const handler = this.handlers.get(header.method);
      if (!handler) return finish(Code.UNIMPLEMENTED, `unknown method ${JSON.stringify(header.method)}`);
      const call: IncomingCall = {
        caller: header.metadata["peerd-caller"] ?? "",
        method: header.method,
        metadata: header.metadata,
        deadline: header.timeoutMicros > 0 ? Date.now() + header.timeoutMicros / 1000 : Infinity,
      };
      if (header.timeoutMicros > 0) {
        timer = setTimeout(() => void finish(Code.DEADLINE_EXCEEDED, `${header.method} passed its deadline`), header.timeoutMicros / 1000);
      }
      const requests = (async function* () {
        for (;;) {
          const frame = await reader.next();
          if (!frame) return;
          if (frame.type !== MESSAGE) throw new PeerdError(Code.INVALID_ARGUMENT, `unexpected frame of type ${frame.type} in a request`);
          yield frame.payload;
        }
      })();
      const result = await handler(requests, call);
      const responses = result instanceof Uint8Array ? [result] : result;
      for await (const response of responses) {
        if (answered) return;
        await writer.write(encodeFrame(MESSAGE, response));
      }
      await finish(Code.OK, "");
    } catch (e) {
      if (e instanceof PeerdError) await finish(e.code, e.message);
      else await finish(Code.UNKNOWN, e instanceof Error ? e.message : String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- datagrams ----

  /**
   * Sends one datagram to `node` for `service`. Never queues: when the
   * session's datagram writer is full, the datagram is counted as dropped.
   */
  sendDatagram(node: string, service: string, message: Uint8Array): void {
    const target = parseNode(node);
    const name = utf8.encode(service);
    if (name.length < 1 || name.length > 255) {
      throw new PeerdError(Code.INVALID_ARGUMENT, `a datagram service name is 1 to 255 bytes, not ${name.length}`);
    }
    const size = NODE_ID_BYTES + 1 + name.length + message.length;
    const limit = this.maxDatagramSize;
    if (size > limit) {
      throw new PeerdError(
        Code.RESOURCE_EXHAUSTED,
        `a datagram of ${size} bytes (message, service name and node id) is over this session's limit of ${limit} bytes; nothing was sent`,
      );
    }
    const w = this.datagramWriter;
    if (this.isClosed || w.desiredSize === null || w.desiredSize <= 0) {
      this.stats.dropped++;
      return;
    }
    const out = new Uint8Array(size);
    out.set(target, 0);
    out[NODE_ID_BYTES] = name.length;
    out.set(name, NODE_ID_BYTES + 1);
    out.set(message, NODE_ID_BYTES + 1 + name.length);
    this.stats.sent++;
    w.write(out).catch(() => {});
  }

  /** Resolves when sendDatagram would not drop for lack of room (for pacing senders). */
  datagramsReady(): Promise<void> {
    return this.datagramWriter.ready;
  }

  /** Whether sendDatagram would now drop for lack of room. */
  get datagramsFull(): boolean {
    const d = this.datagramWriter.desiredSize;
    return d === null || d <= 0;
  }

  get maxDatagramSize(): number {
    return this.session.datagrams.maxDatagramSize;
  }

  onDatagram(service: string, handler: (from: string, message: Uint8Array) => void): void {
    this.datagramHandlers.set(service, handler);
  }

  datagramStats(): DatagramStats {
    return { ...this.stats };
  }

  private async receiveDatagrams(): Promise<void> {
    const reader = this.session.datagrams.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (value.length < NODE_ID_BYTES + 2) continue;
        const n = value[NODE_ID_BYTES];
        if (n === 0 || value.length < NODE_ID_BYTES + 1 + n) continue;
        let service: string;
        try {
          service = utf8Decoder.decode(value.subarray(NODE_ID_BYTES + 1, NODE_ID_BYTES + 1 + n));
        } catch {
          continue;
        }
        this.stats.received++;
        const handler = this.datagramHandlers.get(service);
        if (!handler) continue;
        try {
          handler(nodeIdToText(value.subarray(0, NODE_ID_BYTES)), value.subarray(NODE_ID_BYTES + 1 + n));
        } catch (e) {
          console.error(`datagram handler for ${service} threw`, e);
        }
      }
    } catch {
      // the session ended
    }
  }
}

// A unary side of a call carries exactly one message; `code` says whose fault it is when not.
async function single(messages: AsyncIterable<Uint8Array>, code: number): Promise<Uint8Array> {
  let only: Uint8Array | undefined;
  let count = 0;
  for await (const r of messages) {
    only = r;
    count++;
  }
  if (count !== 1 || !only) throw new PeerdError(code, `expected exactly one message, got ${count}`);
  return only;
}

function parseNode(node: string): Uint8Array {
  try {
    return nodeIdFromText(node);
  } catch (e) {
    throw new PeerdError(Code.INVALID_ARGUMENT, `${JSON.stringify(node)} is not a NodeId: ${(e as Error).message}`);
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new Error(`not hex: ${JSON.stringify(hex)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
