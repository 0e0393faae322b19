// How the library fails: gRPC status codes, as peerd uses them, carried by
// PeerdError whether the daemon, a node or the page itself decided the code.

import { nodeIdFromText } from "./nodeid.js";

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

/** A NodeId given by the page's code; a malformed one fails here, not at the daemon. */
export function parseNode(node: string): Uint8Array {
  try {
    return nodeIdFromText(node);
  } catch (e) {
    throw new PeerdError(Code.INVALID_ARGUMENT, `${JSON.stringify(node)} is not a NodeId: ${(e as Error).message}`);
  }
}
