// The daemon's info document (GET <info URL>): where its WebTransport endpoint
// listens and which certificates the page may pin for it.

import { Code, PeerdError } from "./errors.js";

export interface DaemonInfo {
  node_id: string;
  url: string;
  certificate_hashes: string[];
}

export async function fetchInfo(url: string, signal: AbortSignal): Promise<DaemonInfo> {
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store", signal });
  } catch (e) {
    throw timedOut(signal, url) ?? new PeerdError(Code.UNAVAILABLE, `cannot fetch the daemon's info from ${url}: ${String(e)}`);
  }
  if (!response.ok) throw new PeerdError(Code.UNAVAILABLE, `the daemon's info at ${url} answered HTTP ${response.status}`);
  let info: DaemonInfo;
  try {
    info = (await response.json()) as DaemonInfo;
  } catch (e) {
    throw timedOut(signal, url) ?? new PeerdError(Code.INTERNAL, `the daemon's info at ${url} is not JSON: ${String(e)}`);
  }
  if (typeof info.node_id !== "string" || typeof info.url !== "string" || !Array.isArray(info.certificate_hashes)) {
    throw new PeerdError(Code.INTERNAL, `the daemon's info at ${url} lacks node_id, url or certificate_hashes`);
  }
  return info;
}

function timedOut(signal: AbortSignal, url: string): PeerdError | undefined {
  if (!signal.aborted) return undefined;
  return new PeerdError(Code.DEADLINE_EXCEEDED, `the daemon's info at ${url} did not come in time`);
}
