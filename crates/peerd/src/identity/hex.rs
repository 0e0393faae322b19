//! Lowercase hex, the text form of hashes, nonces and signatures in
//! metadata and JSON.

/// `bytes` as lowercase hex, two digits each.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_are_two_lowercase_digits_each() {
        assert_eq!(super::to_hex(&[0x0a, 0xff, 0x00]), "0aff00");
        assert_eq!(super::to_hex(&[]), "");
    }
}
