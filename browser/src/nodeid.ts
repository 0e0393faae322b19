// NodeId text form: a node is named by its 32-byte Ed25519 public key, written
// as RFC 4648 base32 (lowercase, no padding, always 52 characters).

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
export const NODE_ID_BYTES = 32;
export const NODE_ID_TEXT_LENGTH = 52;

export function nodeIdToText(id: Uint8Array): string {
  if (id.length !== NODE_ID_BYTES) {
    throw new Error(`a NodeId is ${NODE_ID_BYTES} bytes, not ${id.length}`);
  }
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of id) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1; // keep only the bits not yet written, so it never overflows
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

export function nodeIdFromText(text: string): Uint8Array<ArrayBuffer> {
  if (text.length !== NODE_ID_TEXT_LENGTH) {
    throw new Error(`a NodeId's text form is ${NODE_ID_TEXT_LENGTH} characters, not ${text.length}`);
  }
  const out = new Uint8Array(NODE_ID_BYTES);
  let buffer = 0;
  let bits = 0;
  let n = 0;
  for (const ch of text.toLowerCase()) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`${JSON.stringify(ch)} is not a base32 character in a NodeId`);
    buffer = ((buffer << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (buffer >> bits) & 0xff;
    }
  }
  // 52 characters carry 260 bits: the 4 left over must be zero, so each key has one text form.
  if ((buffer & ((1 << bits) - 1)) !== 0) throw new Error("a NodeId's text form has non-zero trailing bits");
  return out;
}
