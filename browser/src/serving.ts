// Calls to the page: for each call a node makes to the page's NodeId, the
// daemon opens a stream and frames the call as a caller does; the page answers
// as a callee, with the handler served for the call's method.

import { single } from "./calls.js";
import { onDeadline } from "./deadline.js";
import { Code, PeerdError } from "./errors.js";
import { encodeFrame, FrameReader, HEADER, MAX_CONTROL_LEN, MESSAGE, STATUS } from "./frames.js";
import { decodeRequestHeader, encodeStatus, type RequestHeader } from "./protobuf.js";

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

export class Server {
  private readonly handlers = new Map<string, Handler>();

  serve(method: string, handler: Handler): void {
    this.handlers.set(method, handler);
  }

  serveUnary(method: string, handler: (request: Uint8Array, call: IncomingCall) => Promise<Uint8Array>): void {
    this.serve(method, async (requests, call) => handler(await single(requests, Code.INVALID_ARGUMENT), call));
  }

  /** Answers the session's incoming streams until it ends. */
  async accept(session: WebTransport): Promise<void> {
    const incoming = session.incomingBidirectionalStreams.getReader() as ReadableStreamDefaultReader<WebTransportBidirectionalStream>;
    try {
      for (;;) {
        const { done, value } = await incoming.read();
        if (done) return;
        void this.answer(new Reply(value));
      }
    } catch {
      // the session ended
    }
  }

  private async answer(reply: Reply): Promise<void> {
    try {
      const header = await reply.header();
      const handler = this.handlers.get(header.method);
      if (!handler) return reply.finish(Code.UNIMPLEMENTED, `unknown method ${JSON.stringify(header.method)}`);
      reply.keepDeadline(header);
      await reply.respond(await handler(reply.requests(), incomingCall(header)));
    } catch (e) {
      if (e instanceof PeerdError) await reply.finish(e.code, e.message, e.metadata);
      else await reply.finish(Code.UNKNOWN, e instanceof Error ? e.message : String(e));
    } finally {
      reply.dispose();
    }
  }
}

function incomingCall(header: RequestHeader): IncomingCall {
  return {
    caller: header.metadata["peerd-caller"] ?? "",
    method: header.method,
    metadata: header.metadata,
    deadline: header.timeoutMicros > 0 ? Date.now() + header.timeoutMicros / 1000 : Infinity,
  };
}

// The page's side of one incoming call: it sends one STATUS at most, after
// which the handler's further responses are dropped and its requests fail.
class Reply {
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly reader: FrameReader;
  private ended?: PeerdError;
  private cancelTimer = () => {};

  constructor(stream: WebTransportBidirectionalStream) {
    this.writer = stream.writable.getWriter();
    this.reader = new FrameReader(stream.readable.getReader());
  }

  async header(): Promise<RequestHeader> {
    const first = await this.reader.next();
    if (!first || first.type !== HEADER) throw new PeerdError(Code.INVALID_ARGUMENT, "a call must start with a header");
    try {
      return decodeRequestHeader(first.payload);
    } catch (e) {
      throw new PeerdError(Code.INVALID_ARGUMENT, `the request header does not decode: ${(e as Error).message}`);
    }
  }

  keepDeadline(header: RequestHeader): void {
    if (header.timeoutMicros === 0) return;
    this.cancelTimer = onDeadline(header.timeoutMicros / 1000, () => {
      void this.finish(Code.DEADLINE_EXCEEDED, `${header.method} passed its deadline`);
    });
  }

  async *requests(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const frame = await this.reader.next();
      // Finishing cancels the reader: the requests did not end, the call did.
      if (this.ended) throw this.ended;
      if (!frame) return;
      if (frame.type !== MESSAGE) throw new PeerdError(Code.INVALID_ARGUMENT, `unexpected frame of type ${frame.type} in a request`);
      yield frame.payload;
    }
  }

  async respond(result: Uint8Array | Uint8Array[] | AsyncIterable<Uint8Array>): Promise<void> {
    const responses = result instanceof Uint8Array ? [result] : result;
    for await (const response of responses) {
      if (this.ended) return;
      await this.writer.write(encodeFrame(MESSAGE, response));
    }
    await this.finish(Code.OK, "");
  }

  async finish(code: number, message: string, metadata?: Record<string, string>): Promise<void> {
    if (this.ended) return;
    this.ended = new PeerdError(code === Code.OK ? Code.CANCELLED : code, message || "the call is over");
    try {
      await this.writer.write(statusFrame(code, message, metadata));
      await this.writer.close();
    } catch {
      // The caller went away, so there is no one to tell; the stream is released all the same.
      this.writer.abort().catch(() => {});
    }
    void this.reader.cancel();
  }

  dispose(): void {
    this.cancelTimer();
  }
}

// A status must fit its frame, or the caller would get none and wait out its
// deadline; an error's message (and metadata) is what can grow past it.
function statusFrame(code: number, message: string, metadata?: Record<string, string>): Uint8Array {
  const status = encodeStatus({ code, message, metadata });
  if (status.length <= MAX_CONTROL_LEN) return encodeFrame(STATUS, status);
  return encodeFrame(STATUS, encodeStatus({ code, message: `${message.slice(0, 4096)}… (cut to fit a STATUS frame)` }));
}
