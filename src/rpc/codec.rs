//! The frame codec: a pure state machine over bytes, no sockets.
//!
//! A frame is a 1-byte type, a 4-byte big-endian payload length, then the
//! payload (docs/protocol.md, "Frames"). The declared length is checked
//! against the limit for its type before a byte of payload is buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes before every payload: type (1) + length (4).
pub const FRAME_HEADER_LEN: usize = 5;

/// Largest header or status frame payload. Metadata beyond this is refused.
pub const MAX_CONTROL_FRAME: u32 = 64 * 1024;

/// Most room reserved ahead for a frame's payload before it arrives: a peer
/// that declares a large frame and sends 5 bytes makes us allocate this, not
/// the declared size. Larger payloads grow the buffer as they arrive.
pub const RESERVE_AHEAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// `RequestHeader`, first frame from the caller.
    Header = 0x01,
    /// One request or response message, encoded by the method's schema.
    Message = 0x02,
    /// `Status`, last frame from the callee.
    Status = 0x03,
}

impl FrameType {
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::Header),
            0x02 => Some(Self::Message),
            0x03 => Some(Self::Status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameType,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    #[error("a {kind:?} frame of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        kind: FrameType,
        declared: u32,
        limit: u32,
    },
    #[error("the stream ended inside a frame ({buffered} bytes of it received)")]
    Truncated { buffered: usize },
}

/// Decodes frames from bytes as they arrive, in any split.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_message: u32,
}

impl FrameDecoder {
    pub fn new(max_message: u32) -> Self {
        Self { max_message }
    }

    fn limit(&self, kind: FrameType) -> u32 {
        match kind {
            FrameType::Message => self.max_message,
            FrameType::Header | FrameType::Status => MAX_CONTROL_FRAME,
        }
    }

    /// Takes one whole frame off the front of `buffer`, or returns `None`
    /// (leaving `buffer` as it was) if more bytes are needed. On success the
    /// payload shares `buffer`'s memory.
    pub fn decode(&self, buffer: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buffer.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let kind = FrameType::from_byte(buffer[0]).ok_or(FrameError::UnknownType(buffer[0]))?;
        let declared = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]);
        let limit = self.limit(kind);
        if declared > limit {
            return Err(FrameError::TooLarge {
                kind,
                declared,
                limit,
            });
        }
        let total = FRAME_HEADER_LEN + declared as usize;
        if buffer.len() < total {
            buffer.reserve((total - buffer.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        buffer.advance(FRAME_HEADER_LEN);
        let payload = buffer.split_to(declared as usize).freeze();
        Ok(Some(Frame { kind, payload }))
    }

    /// Checks what is left when the stream has ended.
    pub fn finish(&self, buffer: &BytesMut) -> Result<(), FrameError> {
        match buffer.len() {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }
}

/// Appends one frame carrying an already-encoded payload.
pub fn put_frame(out: &mut BytesMut, kind: FrameType, payload: &[u8]) {
    put_frame_header(out, kind, payload.len());
    out.put_slice(payload);
}

/// Appends one frame whose payload is `message`, encoded in place.
pub fn put_message_frame(out: &mut BytesMut, kind: FrameType, message: &impl prost::Message) {
    let len = message.encoded_len();
    out.reserve(FRAME_HEADER_LEN + len);
    put_frame_header(out, kind, len);
    message
        .encode(out)
        .expect("reserved exactly the encoded length");
}

fn put_frame_header(out: &mut BytesMut, kind: FrameType, len: usize) {
    let len = u32::try_from(len).expect("frames are limited to u32 lengths by the sender's checks");
    out.put_u8(kind as u8);
    out.put_u32(len);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u32 = 1024;

    fn frame_bytes(kind: FrameType, payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        put_frame(&mut out, kind, payload);
        out
    }

    fn decode_all(decoder: &FrameDecoder, buffer: &mut BytesMut) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(buffer).unwrap() {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn every_split_point_of_a_frame_decodes_the_same() {
        let decoder = FrameDecoder::new(LIMIT);
        let whole = frame_bytes(FrameType::Message, b"hello, frame");
        for split in 0..=whole.len() {
            let mut buffer = BytesMut::from(&whole[..split]);
            let early = decode_all(&decoder, &mut buffer);
            if split < whole.len() {
                assert!(
                    early.is_empty(),
                    "split {split}: no frame before all bytes arrived"
                );
                assert_eq!(buffer.len(), split, "split {split}: nothing consumed early");
            }
            buffer.extend_from_slice(&whole[split..]);
            let frames = [early, decode_all(&decoder, &mut buffer)].concat();
            assert_eq!(frames.len(), 1, "split {split}");
            assert_eq!(frames[0].payload, &b"hello, frame"[..]);
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn several_frames_in_one_buffer_come_out_in_order() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = frame_bytes(FrameType::Header, b"h");
        buffer.extend_from_slice(&frame_bytes(FrameType::Message, b"m"));
        buffer.extend_from_slice(&frame_bytes(FrameType::Status, b""));
        let kinds: Vec<_> = decode_all(&decoder, &mut buffer)
            .iter()
            .map(|f| f.kind)
            .collect();
        assert_eq!(
            kinds,
            [FrameType::Header, FrameType::Message, FrameType::Status]
        );
    }

    #[test]
    fn the_size_limit_is_inclusive() {
        let decoder = FrameDecoder::new(LIMIT);
        let at_limit = vec![7u8; LIMIT as usize];
        let mut buffer = frame_bytes(FrameType::Message, &at_limit);
        assert_eq!(
            decoder.decode(&mut buffer).unwrap().unwrap().payload.len(),
            LIMIT as usize
        );

        let mut over = frame_bytes(FrameType::Message, &[7u8; LIMIT as usize + 1]);
        let err = decoder.decode(&mut over).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                kind: FrameType::Message,
                declared: LIMIT + 1,
                limit: LIMIT
            }
        );
    }

    #[test]
    fn an_oversized_declaration_is_refused_before_any_payload_arrives() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = BytesMut::from(&[0x02, 0xff, 0xff, 0xff, 0xff][..]);
        let err = decoder.decode(&mut buffer).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                declared: u32::MAX,
                ..
            }
        ));
        assert!(
            buffer.capacity() < 1024,
            "nothing was reserved for the payload"
        );
    }

    #[test]
    fn a_large_declared_frame_reserves_little_until_its_bytes_arrive() {
        let decoder = FrameDecoder::new(u32::MAX);
        let mut buffer = BytesMut::new();
        put_frame_header(&mut buffer, FrameType::Message, 4 * 1024 * 1024);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        assert!(
            buffer.capacity() <= FRAME_HEADER_LEN + RESERVE_AHEAD,
            "5 bytes reserved {} bytes",
            buffer.capacity()
        );
    }

    #[test]
    fn control_frames_have_their_own_limit() {
        let decoder = FrameDecoder::new(u32::MAX);
        let mut buffer = BytesMut::new();
        put_frame_header(
            &mut buffer,
            FrameType::Header,
            MAX_CONTROL_FRAME as usize + 1,
        );
        assert!(matches!(
            decoder.decode(&mut buffer),
            Err(FrameError::TooLarge {
                kind: FrameType::Header,
                ..
            })
        ));
    }

    #[test]
    fn an_empty_message_is_a_frame() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = frame_bytes(FrameType::Message, b"");
        let frame = decoder.decode(&mut buffer).unwrap().unwrap();
        assert_eq!((frame.kind, frame.payload.len()), (FrameType::Message, 0));
    }

    #[test]
    fn an_unknown_frame_type_is_an_error_naming_it() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = BytesMut::from(&[0x09, 0, 0, 0, 0][..]);
        let err = decoder.decode(&mut buffer).unwrap_err();
        assert_eq!(err, FrameError::UnknownType(0x09));
        assert_eq!(err.to_string(), "unknown frame type 0x09");
    }

    #[test]
    fn a_stream_ending_inside_a_frame_is_truncated() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = BytesMut::from(&frame_bytes(FrameType::Message, b"abc")[..6]);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        assert_eq!(
            decoder.finish(&buffer),
            Err(FrameError::Truncated { buffered: 6 })
        );
        assert_eq!(decoder.finish(&BytesMut::new()), Ok(()));
    }

    #[test]
    fn message_frames_encode_in_place() {
        let mut out = BytesMut::new();
        let status = crate::rpc::proto::Status {
            code: 5,
            message: "x".into(),
            ..Default::default()
        };
        put_message_frame(&mut out, FrameType::Status, &status);
        let frame = FrameDecoder::new(LIMIT).decode(&mut out).unwrap().unwrap();
        assert_eq!(
            <crate::rpc::proto::Status as prost::Message>::decode(frame.payload).unwrap(),
            status
        );
    }
}
