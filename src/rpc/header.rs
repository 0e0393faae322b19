//! The request header encoded straight from a call's borrowed method and
//! metadata: the bytes of `proto::RequestHeader`, without copying the method
//! into a `String` and the metadata into a new map on every call.

use std::collections::HashMap;

use bytes::BufMut;
use prost::encoding::{
    WireType, encode_key, encode_varint, encoded_len_varint, hash_map, key_len, string, uint64,
};

use super::outgoing::{Encode, OutFrames};

/// Field numbers of `RequestHeader` (proto/peerd/rpc/v1/rpc.proto).
const METHOD: u32 = 1;
const TIMEOUT_MICROS: u32 = 2;
const METADATA: u32 = 3;

/// A `RequestHeader` of borrowed fields, for encoding only.
pub(super) struct RequestHeaderRef<'a> {
    pub method: &'a str,
    pub timeout_micros: u64,
    pub metadata: &'a HashMap<String, String>,
}

// Like prost's generated code, fields at their default value are left out.
impl Encode for RequestHeaderRef<'_> {
    fn encoded_len(&self) -> usize {
        let method = match self.method.len() {
            0 => 0,
            len => key_len(METHOD) + encoded_len_varint(len as u64) + len,
        };
        let timeout = match self.timeout_micros {
            0 => 0,
            micros => uint64::encoded_len(TIMEOUT_MICROS, &micros),
        };
        let metadata = hash_map::encoded_len(
            string::encoded_len,
            string::encoded_len,
            METADATA,
            self.metadata,
        );
        method + timeout + metadata
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        if !self.method.is_empty() {
            encode_key(METHOD, WireType::LengthDelimited, out);
            encode_varint(self.method.len() as u64, out);
            out.put_slice(self.method.as_bytes());
        }
        if self.timeout_micros != 0 {
            uint64::encode(TIMEOUT_MICROS, &self.timeout_micros, out);
        }
        hash_map::encode(
            string::encode,
            string::encoded_len,
            string::encode,
            string::encoded_len,
            METADATA,
            self.metadata,
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::rpc::proto::RequestHeader;

    fn encoded(header: &impl Encode) -> Vec<u8> {
        let mut out = OutFrames::new();
        header.encode_raw(&mut out);
        let bytes = out.into_chunks().concat();
        assert_eq!(bytes.len(), header.encoded_len(), "encoded_len is exact");
        bytes
    }

    #[test]
    fn the_bytes_are_those_of_the_generated_message() {
        let metadata = HashMap::from([
            ("trace".to_owned(), "abc123".to_owned()),
            ("tenant".to_owned(), String::new()),
            (String::new(), "empty key".to_owned()),
        ]);
        for (method, timeout_micros, metadata) in [
            ("peerd.node.v1.Node/Echo", 30_000_000, HashMap::new()),
            ("peerd.node.v1.Node/Echo", 1, metadata.clone()),
            ("", 0, metadata),
            ("", 0, HashMap::new()),
        ] {
            let borrowed = RequestHeaderRef {
                method,
                timeout_micros,
                metadata: &metadata,
            };
            let generated = RequestHeader {
                method: method.to_owned(),
                timeout_micros,
                metadata: metadata.clone(),
            };
            let bytes = encoded(&borrowed);
            assert_eq!(
                bytes,
                generated.encode_to_vec(),
                "{method:?} {timeout_micros}"
            );
            assert_eq!(RequestHeader::decode(bytes.as_slice()).unwrap(), generated);
        }
    }
}
