//! The messages of rpc.proto encoded straight from borrowed fields: the bytes
//! of `proto::RequestHeader` and `proto::Status`, without copying a method,
//! message or metadata map into a generated struct on every call; and the
//! request header decoded with its method left in the received bytes.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes};
use prost::DecodeError;
use prost::encoding::{
    DecodeContext, WireType, decode_key, encode_key, encode_varint, encoded_len_varint, hash_map,
    key_len, skip_field, string, uint64,
};

use super::outgoing::{Encode, OutFrames};

/// Field numbers of `RequestHeader` (proto/peerd/rpc/v1/rpc.proto).
const METHOD: u32 = 1;
const TIMEOUT_MICROS: u32 = 2;
const METADATA: u32 = 3;

/// Field numbers of `Status`.
const STATUS_CODE: u32 = 1;
const STATUS_MESSAGE: u32 = 2;
const STATUS_METADATA: u32 = 3;

/// A `RequestHeader` of borrowed fields, for encoding only.
pub(crate) struct RequestHeaderRef<'a> {
    pub method: &'a str,
    pub timeout_micros: u64,
    pub metadata: &'a HashMap<String, String>,
}

// Like prost's generated code, fields at their default value are left out.
impl Encode for RequestHeaderRef<'_> {
    fn encoded_len(&self) -> usize {
        str_len(METHOD, self.method)
            + uint64_len(TIMEOUT_MICROS, self.timeout_micros)
            + map_len(METADATA, self.metadata)
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        put_str(METHOD, self.method, out);
        put_uint64(TIMEOUT_MICROS, self.timeout_micros, out);
        put_map(METADATA, self.metadata, out);
    }
}

/// A `Status` of borrowed fields, for encoding only.
pub(crate) struct StatusRef<'a> {
    pub code: u32,
    pub message: &'a str,
    pub metadata: &'a HashMap<String, String>,
}

impl Encode for StatusRef<'_> {
    fn encoded_len(&self) -> usize {
        uint64_len(STATUS_CODE, self.code.into())
            + str_len(STATUS_MESSAGE, self.message)
            + map_len(STATUS_METADATA, self.metadata)
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        put_uint64(STATUS_CODE, self.code.into(), out);
        put_str(STATUS_MESSAGE, self.message, out);
        put_map(STATUS_METADATA, self.metadata, out);
    }
}

/// Bounds on the metadata of a received header, in entries and in memory
/// accounted as each entry's bytes on the wire plus [`METADATA_ENTRY_COST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetadataLimits {
    pub entries: usize,
    pub bytes: usize,
}

/// Memory a decoded metadata entry takes beyond its key and value bytes:
/// two `String`s in the map's table, which grows by doubling, and two
/// allocations. Measured: 8,700 one-byte entries took 126 bytes each.
pub(crate) const METADATA_ENTRY_COST: usize = 128;

/// A received `RequestHeader`. Its method stays in the frame's bytes: the
/// route is found by them, so no call copies its method into a `String`.
#[derive(Debug, Default)]
pub(crate) struct ReceivedHeader {
    /// Checked as UTF-8 only if no route matches it: only a routed name,
    /// which is UTF-8, can.
    method: Bytes,
    pub timeout_micros: u64,
    pub metadata: HashMap<String, String>,
}

impl ReceivedHeader {
    /// Decodes as prost decodes `RequestHeader`: the last value of a field
    /// wins, map entries add up, and unknown fields are skipped. Metadata
    /// over `limits` is refused as soon as it is.
    pub(crate) fn decode(mut bytes: Bytes, limits: MetadataLimits) -> Result<Self, HeaderError> {
        let mut header = Self::default();
        let mut accounted = 0;
        while bytes.has_remaining() {
            let (tag, wire_type) = decode_key(&mut bytes)?;
            let context = DecodeContext::default();
            match tag {
                // `Bytes` from `Bytes` is cut, not copied.
                METHOD => prost::encoding::bytes::merge(
                    wire_type,
                    &mut header.method,
                    &mut bytes,
                    context,
                )?,
                TIMEOUT_MICROS => {
                    uint64::merge(wire_type, &mut header.timeout_micros, &mut bytes, context)?
                }
                METADATA => {
                    let before = bytes.remaining();
                    hash_map::merge(
                        string::merge,
                        string::merge,
                        &mut header.metadata,
                        &mut bytes,
                        context,
                    )?;
                    accounted += before - bytes.remaining() + METADATA_ENTRY_COST;
                    if header.metadata.len() > limits.entries || accounted > limits.bytes {
                        return Err(HeaderError::TooMuchMetadata(limits));
                    }
                }
                _ => skip_field(wire_type, tag, &mut bytes, context)?,
            }
        }
        Ok(header)
    }

    /// The method's name as received, for the router.
    pub(crate) fn method_bytes(&self) -> &[u8] {
        &self.method
    }

    /// The method's name, refused as prost would refuse it if not UTF-8.
    pub(crate) fn method(&self) -> Result<&str, HeaderError> {
        std::str::from_utf8(&self.method).map_err(|_| HeaderError::MethodNotUtf8)
    }
}

/// Why a received header could not be decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the method is not UTF-8")]
    MethodNotUtf8,
    #[error(
        "the metadata exceeds {} entries or {} bytes (each entry counted as its bytes + {METADATA_ENTRY_COST})",
        .0.entries,
        .0.bytes
    )]
    TooMuchMetadata(MetadataLimits),
}

fn str_len(tag: u32, value: &str) -> usize {
    match value.len() {
        0 => 0,
        len => key_len(tag) + encoded_len_varint(len as u64) + len,
    }
}

fn put_str(tag: u32, value: &str, out: &mut OutFrames) {
    if !value.is_empty() {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(value.len() as u64, out);
        out.put_slice(value.as_bytes());
    }
}

/// Also serves `uint32` fields: both are the value's varint.
fn uint64_len(tag: u32, value: u64) -> usize {
    match value {
        0 => 0,
        value => uint64::encoded_len(tag, &value),
    }
}

fn put_uint64(tag: u32, value: u64, out: &mut OutFrames) {
    if value != 0 {
        uint64::encode(tag, &value, out);
    }
}

fn map_len(tag: u32, map: &HashMap<String, String>) -> usize {
    hash_map::encoded_len(string::encoded_len, string::encoded_len, tag, map)
}

fn put_map(tag: u32, map: &HashMap<String, String>, out: &mut OutFrames) {
    hash_map::encode(
        string::encode,
        string::encoded_len,
        string::encode,
        string::encoded_len,
        tag,
        map,
        out,
    );
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::rpc::wire::proto::RequestHeader;

    fn encoded(message: &impl Encode) -> Vec<u8> {
        let mut out = OutFrames::new();
        message.encode_raw(&mut out);
        let bytes = out.into_chunks().concat();
        assert_eq!(bytes.len(), message.encoded_len(), "encoded_len is exact");
        bytes
    }

    #[test]
    fn a_request_header_encodes_as_the_generated_message() {
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

    const LIMITS: MetadataLimits = MetadataLimits {
        entries: 64,
        bytes: 16 * 1024,
    };

    fn received(header: &RequestHeader) -> ReceivedHeader {
        ReceivedHeader::decode(header.encode_to_vec().into(), LIMITS).unwrap()
    }

    fn with_metadata(entries: usize, value_len: usize) -> Bytes {
        let metadata = (0..entries)
            .map(|i| (format!("{i:x}"), "v".repeat(value_len)))
            .collect();
        let header = RequestHeader {
            method: "m".to_owned(),
            timeout_micros: 0,
            metadata,
        };
        header.encode_to_vec().into()
    }

    #[test]
    fn metadata_is_bounded_by_entries_and_by_accounted_bytes() {
        let limits = MetadataLimits {
            entries: 8,
            bytes: 8 * (METADATA_ENTRY_COST + 100),
        };
        let fits = ReceivedHeader::decode(with_metadata(8, 10), limits).unwrap();
        assert_eq!(fits.metadata.len(), 8);
        for (entries, value_len) in [(9, 0), (2, 1000), (8, 100)] {
            let error = ReceivedHeader::decode(with_metadata(entries, value_len), limits);
            assert!(
                matches!(error, Err(HeaderError::TooMuchMetadata(_))),
                "{entries} x {value_len} B"
            );
        }
    }

    #[test]
    fn a_repeated_key_counts_every_time_it_comes() {
        let mut bytes = Vec::new();
        for _ in 0..3 {
            let one = RequestHeader {
                metadata: HashMap::from([("k".to_owned(), "v".repeat(200))]),
                ..Default::default()
            };
            bytes.extend(one.encode_to_vec());
        }
        let limits = MetadataLimits {
            entries: 8,
            bytes: 2 * (METADATA_ENTRY_COST + 210),
        };
        let error = ReceivedHeader::decode(bytes.into(), limits);
        assert!(matches!(error, Err(HeaderError::TooMuchMetadata(_))));
    }

    #[test]
    fn a_received_header_decodes_as_the_generated_message() {
        let metadata = HashMap::from([("trace".to_owned(), "abc123".to_owned())]);
        for header in [
            RequestHeader::default(),
            RequestHeader {
                method: "peerd.node.v1.Node/Echo".to_owned(),
                timeout_micros: 30_000_000,
                metadata,
            },
        ] {
            let decoded = received(&header);
            assert_eq!(decoded.method_bytes(), header.method.as_bytes());
            assert_eq!(decoded.timeout_micros, header.timeout_micros);
            assert_eq!(decoded.metadata, header.metadata);
        }
    }

    #[test]
    fn a_received_header_keeps_the_last_method_and_skips_unknown_fields() {
        let mut bytes = RequestHeader {
            method: "first".to_owned(),
            ..Default::default()
        }
        .encode_to_vec();
        // Field 9, a varint, then the method again.
        bytes.extend([9 << 3, 42]);
        bytes.extend(
            RequestHeader {
                method: "second".to_owned(),
                timeout_micros: 7,
                ..Default::default()
            }
            .encode_to_vec(),
        );
        let generated = RequestHeader::decode(bytes.as_slice()).unwrap();
        let decoded = ReceivedHeader::decode(bytes.into(), LIMITS).unwrap();
        assert_eq!(decoded.method_bytes(), generated.method.as_bytes());
        assert_eq!(decoded.method_bytes(), b"second");
        assert_eq!(decoded.timeout_micros, 7);
    }

    #[test]
    fn a_malformed_header_is_refused_like_the_generated_message() {
        let method_of = |payload: &[u8]| {
            let mut bytes = vec![METHOD as u8 * 8 + 2, payload.len() as u8];
            bytes.extend(payload);
            bytes
        };
        let mut cut_short = method_of(b"peerd.node.v1.Node/Echo");
        cut_short.truncate(10);
        let method_as_varint = vec![METHOD as u8 * 8, 1];
        for bytes in [cut_short, method_as_varint, vec![0x80]] {
            assert!(RequestHeader::decode(bytes.as_slice()).is_err());
            assert!(
                ReceivedHeader::decode(bytes.clone().into(), LIMITS).is_err(),
                "{bytes:?}"
            );
        }
        let not_utf8 = method_of(&[0xff, 0xfe]);
        assert!(RequestHeader::decode(not_utf8.as_slice()).is_err());
        let header = ReceivedHeader::decode(not_utf8.into(), LIMITS).unwrap();
        assert!(matches!(header.method(), Err(HeaderError::MethodNotUtf8)));
    }
}
