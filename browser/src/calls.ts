// Calls from the page: each is one bidirectional stream to the daemon,
// framed as a caller frames a call to a node (a HEADER naming the target in
// peerd-node, MESSAGE frames each way, the daemon's STATUS last).

import { CallEnd } from "./call-end.js";
import { Code, PeerdError, parseNode } from "./errors.js";
import { encodeFrame, FrameError, FrameReader, HEADER, MESSAGE, STATUS, type Frame } from "./frames.js";
import { decodeStatus, encodeRequestHeader } from "./protobuf.js";

export interface CallOptions {
  /** The call's deadline, from now (default 30 s). */
  timeoutMs?: number;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export type Requests = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

const DEFAULT_TIMEOUT_MS = 30_000;

/** Every kind of call: unary and server streaming pass one request, and the unary kinds take `single` of the answer. */
export async function* call(
  session: WebTransport,
  node: string,
  method: string,
  requests: Requests,
  opts: CallOptions = {},
): AsyncGenerator<Uint8Array> {
  parseNode(node);
  const timeoutMs = callTimeout(opts.timeoutMs);
  const header = headerFrame(method, node, timeoutMs, opts.metadata);
  const end = new CallEnd(method, timeoutMs, opts.signal);
  let answered = false;
  try {
    const { writer, reader } = await end.open(session);
    // Requests go out while responses come in: a bidi stream's peer may answer before we finish.
    void send(writer, header, requests, end);
    for (;;) {
      const frame = await receive(reader, end, method);
      if (frame.type === MESSAGE) {
        yield frame.payload;
        continue;
      }
      answered = true;
      const status = decodeStatus(frame.payload);
      if (status.code !== Code.OK) throw new PeerdError(status.code, status.message, status.metadata);
      return;
    }
  } finally {
    end.finish(answered);
  }
}

// A deadline already past (a negative timeout) fails the call as a timeout of 0 does.
function callTimeout(timeoutMs = DEFAULT_TIMEOUT_MS): number {
  if (!Number.isFinite(timeoutMs)) {
    throw new PeerdError(Code.INVALID_ARGUMENT, `a call's timeoutMs is a finite number of ms, not ${timeoutMs}`);
  }
  return Math.max(0, timeoutMs);
}

function headerFrame(method: string, node: string, timeoutMs: number, metadata?: Record<string, string>): Uint8Array {
  // At least 1 µs: 0 would tell the daemon there is no deadline, and it would use its default.
  const timeoutMicros = Math.min(Number.MAX_SAFE_INTEGER, Math.max(1, Math.round(timeoutMs * 1000)));
  const header = encodeRequestHeader({ method, timeoutMicros, metadata: { ...metadata, "peerd-node": node } });
  return encode(HEADER, header);
}

async function send(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  header: Uint8Array,
  requests: Requests,
  end: CallEnd,
): Promise<void> {
  // A write fails when the call is over (the daemon answered or the call was
  // stopped); its status says why, so a failed write just ends the sending.
  const write = (bytes: Uint8Array) => writer.write(bytes).then(() => true, () => false);
  try {
    if (!(await write(header))) return;
    for await (const request of requests as AsyncIterable<Uint8Array>) {
      if (end.over || !(await write(encode(MESSAGE, request)))) return;
    }
    await writer.close().catch(() => {});
  } catch (e) {
    // The page's own requests failed: the daemon cannot know, so stop the call rather than wait for its deadline.
    end.stop(e instanceof PeerdError ? e : new PeerdError(Code.CANCELLED, `the requests failed: ${String(e)}`));
  }
}

async function receive(reader: FrameReader, end: CallEnd, method: string): Promise<Frame> {
  let frame;
  try {
    frame = await reader.next();
  } catch (e) {
    throw end.reason ?? new PeerdError(Code.UNAVAILABLE, `the call to ${method} broke: ${String(e)}`);
  }
  // Stopping cancels the reader, which ends a pending read; frames already buffered no longer count.
  if (end.reason) throw end.reason;
  if (!frame) throw new PeerdError(Code.UNAVAILABLE, "the daemon closed the call without a status");
  if (frame.type !== MESSAGE && frame.type !== STATUS) {
    throw new PeerdError(Code.INTERNAL, `the daemon sent an unexpected frame of type ${frame.type} in a call`);
  }
  return frame;
}

// A frame the page makes; one over the limit is the page's error, not the stream's.
function encode(type: number, payload: Uint8Array): Uint8Array {
  try {
    return encodeFrame(type, payload);
  } catch (e) {
    if (e instanceof FrameError) throw new PeerdError(Code.RESOURCE_EXHAUSTED, e.message);
    throw e;
  }
}

// A unary side of a call carries exactly one message; `code` says whose fault it is when not.
export async function single(messages: AsyncIterable<Uint8Array>, code: number): Promise<Uint8Array> {
  let only: Uint8Array | undefined;
  for await (const message of messages) {
    // Fails at the second: the rest need not be read, nor the far side wait for us to.
    if (only) throw new PeerdError(code, "expected exactly one message, got more");
    only = message;
  }
  if (!only) throw new PeerdError(code, "expected exactly one message, got none");
  return only;
}
