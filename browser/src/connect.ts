// The start of a session: fetch the daemon's info, open WebTransport to it
// pinning the certificates it names, and prove the page's Ed25519 key against
// the daemon's challenge on the control stream.

import { Agent } from "./agent.js";
import { bytesToHex, equal, hexToBytes } from "./bytes.js";
import { Code, PeerdError } from "./errors.js";
import { FrameReader, encodeFrame, MESSAGE, STATUS, type Frame } from "./frames.js";
import { fetchInfo, type DaemonInfo } from "./info.js";
import { nodeIdFromText, nodeIdToText } from "./nodeid.js";
import { decodeChallenge, decodeStatus, encodeProof, type Challenge } from "./protobuf.js";

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
  /** Each attempt's deadline, from the info fetch to the daemon's verdict (default 10 s, the daemon's own). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const PROOF_DOMAIN = new TextEncoder().encode("peerd-browser-v1");

/** Connects to the daemon named by `info` and proves the page's key; resolves once accepted. */
export async function connect(options: ConnectOptions): Promise<Agent> {
  const keyPair =
    options.keyPair ??
    ((await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair);
  const attempts = Math.max(1, options.attempts ?? 3);
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
  throw new PeerdError(Code.UNAVAILABLE, `${(last as Error).message} (after ${attempts} attempts)`);
}

class CertificateError extends Error {}

async function connectOnce(options: ConnectOptions, keyPair: CryptoKeyPair): Promise<Agent> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const info = await fetchInfo(options.info, deadline);
  const host = nodeIdFromText(info.node_id);
  const hashes = info.certificate_hashes.map(hexToBytes);
  const session = new WebTransport(info.url, {
    serverCertificateHashes: hashes.map((value) => ({ algorithm: "sha-256", value })),
  });
  session.closed.catch(() => {}); // observed by the Agent; avoid an unhandled rejection meanwhile
  // Closing the session wakes whichever step of the handshake is waiting.
  const giveUp = () => closeQuietly(session);
  deadline.addEventListener("abort", giveUp);
  try {
    return await handshake(session, info, host, hashes, options, keyPair);
  } catch (e) {
    closeQuietly(session);
    if (deadline.aborted) {
      throw new PeerdError(Code.DEADLINE_EXCEEDED, `the daemon at ${info.url} did not accept the page within ${timeoutMs} ms`);
    }
    throw e;
  } finally {
    deadline.removeEventListener("abort", giveUp);
  }
}

async function handshake(
  session: WebTransport,
  info: DaemonInfo,
  host: Uint8Array,
  hashes: Uint8Array[],
  options: ConnectOptions,
  keyPair: CryptoKeyPair,
): Promise<Agent> {
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
  checkChallenge(challenge, host, hashes);

  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, keyPair.privateKey, proofMessage(challenge)));
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
}

function checkChallenge(challenge: Challenge, host: Uint8Array, hashes: Uint8Array[]): void {
  if (!equal(challenge.host, host)) {
    throw new PeerdError(Code.UNAUTHENTICATED, "the daemon's challenge names another host");
  }
  if (!hashes.some((h) => equal(h, challenge.certificateHash))) {
    throw new CertificateError("the daemon's challenge names another certificate");
  }
  // The info may list hashes of any length; the signed message holds 32 bytes of each part.
  if (challenge.nonce.length !== 32 || challenge.certificateHash.length !== 32) {
    throw new PeerdError(Code.INTERNAL, "the daemon's challenge nonce or certificate hash is not 32 bytes");
  }
}

async function readControl(reader: FrameReader, what: string): Promise<Frame> {
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

function closeQuietly(session: WebTransport): void {
  try {
    session.close();
  } catch {
    // a session that never opened cannot be closed
  }
}
