// How a call from the page ends before the daemon's status: its deadline
// passes, its signal aborts, its requests fail or its consumer stops reading.
// Each ends it the same way, once: both directions of its stream are aborted.

import { onDeadline } from "./deadline.js";
import { Code, PeerdError } from "./errors.js";
import { FrameReader } from "./frames.js";

interface CallStream {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  reader: FrameReader;
}

export class CallEnd {
  /** Why the call was stopped, once it was. */
  reason?: PeerdError;
  /** Stopped, or answered: requests are no longer wanted. */
  over = false;

  private stream?: CallStream;
  private readonly stopped: Promise<never>;
  private reject!: (e: PeerdError) => void;
  private readonly cancelTimer: () => void;
  private readonly onAbort: () => void;

  constructor(
    private readonly method: string,
    timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.stopped = new Promise<never>((_, reject) => (this.reject = reject));
    this.stopped.catch(() => {});
    this.cancelTimer = onDeadline(timeoutMs, () =>
      this.stop(new PeerdError(Code.DEADLINE_EXCEEDED, `the call to ${method} passed its deadline of ${timeoutMs} ms`)),
    );
    this.onAbort = () => this.stop(new PeerdError(Code.CANCELLED, `the call to ${method} was cancelled`));
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** The call's stream; opening it waits while the session has no stream credit, but not past the call's end. */
  async open(session: WebTransport): Promise<CallStream> {
    if (this.reason) throw this.reason;
    const opening = session.createBidirectionalStream().then((s) => ({
      writer: s.writable.getWriter(),
      reader: new FrameReader(s.readable.getReader()),
    }));
    try {
      this.stream = await Promise.race([opening, this.stopped]);
    } catch (e) {
      if (!this.reason) throw new PeerdError(Code.UNAVAILABLE, `cannot open a call stream for ${this.method}: ${String(e)}`);
      // A stream that opens after all is released, not left to the daemon's header timeout.
      opening.then(release, () => {});
      throw this.reason;
    }
    // Stopped while the opened stream was on its way to us.
    if (this.reason) {
      release(this.stream, this.reason);
      throw this.reason;
    }
    return this.stream;
  }

  stop(reason: PeerdError): void {
    if (this.over) return;
    this.over = true;
    this.reason = reason;
    if (this.stream) release(this.stream, reason);
    this.reject(reason);
  }

  /** The call is over: the daemon `answered` it, or its consumer left (or it failed) first. */
  finish(answered: boolean): void {
    this.cancelTimer();
    this.signal?.removeEventListener("abort", this.onAbort);
    if (!answered) {
      this.stop(new PeerdError(Code.CANCELLED, "the call ended early"));
      return;
    }
    this.over = true;
    // The answer came before all requests went out: there is no one to send them to.
    this.stream?.writer.abort().catch(() => {});
  }
}

function release(stream: CallStream, reason?: unknown): void {
  stream.writer.abort(reason).catch(() => {});
  void stream.reader.cancel(reason);
}
