// Datagrams to and from other nodes, through the daemon: each is the other
// node's 32-byte NodeId, a 1-byte length and the service's name, then the
// message. Never queued: a datagram with no room to go is dropped and counted.

import { Code, PeerdError, parseNode } from "./errors.js";
import { nodeIdToText, NODE_ID_BYTES } from "./nodeid.js";

export interface DatagramStats {
  sent: number;
  dropped: number;
  received: number;
}

export type DatagramHandler = (from: string, message: Uint8Array) => void;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export class Datagrams {
  private readonly handlers = new Map<string, DatagramHandler>();
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly counts: DatagramStats = { sent: 0, dropped: 0, received: 0 };

  constructor(
    private readonly session: WebTransport,
    private readonly isClosed: () => boolean,
  ) {
    // The spec now prefers createWritable(); Chromium has long had .writable.
    const datagrams = session.datagrams as WebTransportDatagramDuplexStream & { createWritable?: () => WritableStream };
    this.writer = (datagrams.writable ?? datagrams.createWritable!()).getWriter();
    this.writer.closed.catch(() => {});
  }

  send(node: string, service: string, message: Uint8Array): void {
    const target = parseNode(node);
    const name = utf8.encode(service);
    if (name.length < 1 || name.length > 255) {
      throw new PeerdError(Code.INVALID_ARGUMENT, `a datagram service name is 1 to 255 bytes, not ${name.length}`);
    }
    const size = NODE_ID_BYTES + 1 + name.length + message.length;
    const limit = this.maxSize;
    if (size > limit) {
      throw new PeerdError(
        Code.RESOURCE_EXHAUSTED,
        `a datagram of ${size} bytes (message, service name and node id) is over this session's limit of ${limit} bytes; nothing was sent`,
      );
    }
    if (this.isClosed() || this.full) {
      this.counts.dropped++;
      return;
    }
    const out = new Uint8Array(size);
    out.set(target, 0);
    out[NODE_ID_BYTES] = name.length;
    out.set(name, NODE_ID_BYTES + 1);
    out.set(message, NODE_ID_BYTES + 1 + name.length);
    this.counts.sent++;
    this.writer.write(out).catch(() => {});
  }

  ready(): Promise<void> {
    return this.writer.ready;
  }

  get full(): boolean {
    const room = this.writer.desiredSize;
    return room === null || room <= 0;
  }

  get maxSize(): number {
    return this.session.datagrams.maxDatagramSize;
  }

  on(service: string, handler: DatagramHandler): void {
    this.handlers.set(service, handler);
  }

  stats(): DatagramStats {
    return { ...this.counts };
  }

  /** Hands each well-formed datagram to its service's handler until the session ends. */
  async receive(): Promise<void> {
    const reader = this.session.datagrams.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        this.deliver(value);
      }
    } catch {
      // the session ended
    }
  }

  private deliver(datagram: Uint8Array): void {
    if (datagram.length < NODE_ID_BYTES + 2) return;
    const n = datagram[NODE_ID_BYTES];
    if (n === 0 || datagram.length < NODE_ID_BYTES + 1 + n) return;
    let service: string;
    try {
      service = utf8Decoder.decode(datagram.subarray(NODE_ID_BYTES + 1, NODE_ID_BYTES + 1 + n));
    } catch {
      return;
    }
    this.counts.received++;
    const handler = this.handlers.get(service);
    if (!handler) return;
    try {
      handler(nodeIdToText(datagram.subarray(0, NODE_ID_BYTES)), datagram.subarray(NODE_ID_BYTES + 1 + n));
    } catch (e) {
      console.error(`datagram handler for ${service} threw`, e);
    }
  }
}
