// Deadlines as timers. setTimeout keeps its delay in 32 bits and fires at once
// past 2^31-1 ms (~24.8 days), so a deadline further off sets no timer: the
// daemon caps every call's deadline (rpc.max_call_deadline) and ends it itself.

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `passed` in `ms`; the returned function cancels it. */
export function onDeadline(ms: number, passed: () => void): () => void {
  if (ms > MAX_TIMER_MS) return () => {};
  const timer = setTimeout(passed, ms);
  return () => clearTimeout(timer);
}
