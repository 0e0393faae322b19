//! Lowercase RFC 4648 base32 without padding: the text form of a `NodeId`.
//! Chosen because it is case-insensitive on input, has no characters that
//! shells, URLs or DNS labels treat specially, and a 32-byte key fits one DNS label.

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[usize::from((buffer >> bits) & 31)] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[usize::from((buffer << (5 - bits)) & 31)] as char);
    }
    out
}

/// Decodes into exactly `N` bytes; `None` on a wrong length, a character
/// outside the alphabet, or non-zero trailing bits (which would make two
/// spellings of one key).
pub(crate) fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != (N * 8).div_ceil(5) {
        return None;
    }
    let mut out = [0u8; N];
    let mut filled = 0;
    let mut buffer: u16 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        buffer = (buffer << 5) | u16::from(value_of(c)?);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[filled] = (buffer >> bits) as u8;
            filled += 1;
        }
        buffer &= (1 << bits) - 1;
    }
    (buffer == 0).then_some(out)
}

fn value_of(c: u8) -> Option<u8> {
    match c.to_ascii_lowercase() {
        c @ b'a'..=b'z' => Some(c - b'a'),
        c @ b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4648_vectors() {
        assert_eq!(encode(b"foobar"), "mzxw6ytboi");
        assert_eq!(encode(b"f"), "my");
        assert_eq!(decode::<6>("mzxw6ytboi"), Some(*b"foobar"));
    }

    #[test]
    fn round_trips_every_byte_value() {
        let mut bytes = [0u8; 32];
        for start in 0..=255u8 {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = start.wrapping_add(i as u8 * 7);
            }
            let text = encode(&bytes);
            assert_eq!(text.len(), 52);
            assert_eq!(decode::<32>(&text), Some(bytes));
        }
    }

    #[test]
    fn accepts_uppercase_input() {
        assert_eq!(decode::<6>("MZXW6YTBOI"), Some(*b"foobar"));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode::<6>("mzxw6ytbo"), None, "too short");
        assert_eq!(decode::<6>("mzxw6ytbo1"), None, "1 is not in the alphabet");
        assert_eq!(decode::<1>("mz"), None, "non-zero trailing bits");
    }
}
