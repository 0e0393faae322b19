// A page accepted by the daemon: one WebTransport session over which it calls
// nodes, serves their calls to its NodeId and exchanges datagrams with them.

import { call, single, type CallOptions, type Requests } from "./calls.js";
import { Datagrams, type DatagramStats } from "./datagrams.js";
import { Code } from "./errors.js";
import { FrameReader } from "./frames.js";
import { Server, type Handler, type IncomingCall } from "./serving.js";

export class Agent {
  /** The page's NodeId text form. */
  readonly id: string;
  /** The daemon's NodeId text form. */
  readonly host: string;
  /** Hex SHA-256 of the certificate the daemon's challenge named. */
  readonly certificateHash: string;
  /** Resolves when the session ends, for whatever reason. */
  readonly closed: Promise<{ closeCode?: number; reason?: string; error?: string }>;

  private readonly server = new Server();
  private readonly datagrams: Datagrams;
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
    this.datagrams = new Datagrams(session, () => this.isClosed);
    void this.server.accept(session);
    void this.datagrams.receive();
    void drain(controlReader);
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
    return single(call(this.session, node, method, [request], opts), Code.INTERNAL);
  }

  serverStreaming(node: string, method: string, request: Uint8Array, opts?: CallOptions): AsyncIterable<Uint8Array> {
    return call(this.session, node, method, [request], opts);
  }

  async clientStreaming(node: string, method: string, requests: Requests, opts?: CallOptions): Promise<Uint8Array> {
    return single(call(this.session, node, method, requests, opts), Code.INTERNAL);
  }

  bidiStreaming(node: string, method: string, requests: Requests, opts?: CallOptions): AsyncIterable<Uint8Array> {
    return call(this.session, node, method, requests, opts);
  }

  // ---- calls to the page ----

  serve(method: string, handler: Handler): void {
    this.server.serve(method, handler);
  }

  serveUnary(method: string, handler: (request: Uint8Array, call: IncomingCall) => Promise<Uint8Array>): void {
    this.server.serveUnary(method, handler);
  }

  // ---- datagrams ----

  /**
   * Sends one datagram to `node` for `service`. Never queues: when the
   * session's datagram writer is full, the datagram is counted as dropped.
   */
  sendDatagram(node: string, service: string, message: Uint8Array): void {
    this.datagrams.send(node, service, message);
  }

  /** Resolves when sendDatagram would not drop for lack of room (for pacing senders). */
  datagramsReady(): Promise<void> {
    return this.datagrams.ready();
  }

  /** Whether sendDatagram would now drop for lack of room. */
  get datagramsFull(): boolean {
    return this.datagrams.full;
  }

  get maxDatagramSize(): number {
    return this.datagrams.maxSize;
  }

  onDatagram(service: string, handler: (from: string, message: Uint8Array) => void): void {
    this.datagrams.on(service, handler);
  }

  datagramStats(): DatagramStats {
    return this.datagrams.stats();
  }
}

// The daemon says nothing more on the control stream; reading it to its end
// means a stray frame cannot stall it, and the session's end speaks for itself.
async function drain(control: FrameReader): Promise<void> {
  try {
    while (await control.next());
  } catch {
    // the session ended
  }
}
