// The peerd browser agent: a web page that joins a local peerd daemon over
// WebTransport, proves it holds an Ed25519 key, then calls and serves methods
// and exchanges datagrams with other nodes through the daemon. This is the
// library's entry point; the modules it re-exports hold the parts.

export { Agent } from "./agent.js";
export { bytesToHex, hexToBytes } from "./bytes.js";
export type { CallOptions } from "./calls.js";
export { connect, proofMessage, type ConnectOptions } from "./connect.js";
export type { DatagramStats } from "./datagrams.js";
export { Code, PeerdError } from "./errors.js";
export { nodeIdFromText, nodeIdToText } from "./nodeid.js";
export { decodeStringMessage, encodeStringMessage } from "./protobuf.js";
export type { Handler, IncomingCall } from "./serving.js";
