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

/// A frame's type, its first byte on the wire.
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
    /// The type with this wire byte, or `None` for a byte no frame type has.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::Header),
            0x02 => Some(Self::Message),
            0x03 => Some(Self::Status),
            _ => None,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the payload is.
    pub kind: FrameType,
    /// The payload, without the 5-byte header; at most the limit for `kind`.
    pub payload: Bytes,
}

/// A stream's bytes that are not a valid sequence of frames. Any of these
/// ends the call: the rest of the stream cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The type byte (carried) is none of [`FrameType`]'s.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// The declared payload length is over the limit for the frame's type:
    /// [`MAX_CONTROL_FRAME`] for headers and statuses, the decoder's
    /// `max_message` (`RpcConfig::max_message_size`) for messages. Detected
    /// from the header alone, before any payload is buffered.
    #[error("a {kind:?} frame of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The frame's type.
        kind: FrameType,
        /// The payload length the header declares, in bytes.
        declared: u32,
        /// The limit for `kind`, in bytes.
        limit: u32,
    },
    /// The stream ended in the middle of a frame.
    #[error("the stream ended inside a frame ({buffered} bytes of it received)")]
    Truncated {
        /// Bytes of the unfinished frame received, its header included.
        buffered: usize,
    },
}

/// Received bytes not yet cut into frames. Whole frames are cut from the
/// chunks quinn hands over without copying them; only a frame that spans
/// chunks is assembled, each of its bytes copied once.
///
/// A payload cut from a chunk shares quinn's receive buffer, which stays
/// allocated as long as the payload is kept.
#[derive(Debug, Default)]
pub struct Unframed {
    /// The rest of the last chunk, while no frame is being assembled.
    chunk: Bytes,
    /// A frame that spans chunks, and whatever arrived after it.
    assembling: BytesMut,
}

impl Unframed {
    /// Adds the next bytes of the stream.
    pub fn push(&mut self, chunk: Bytes) {
        if self.assembling.is_empty() && self.chunk.is_empty() {
            self.chunk = chunk;
            return;
        }
        if self.assembling.is_empty() {
            // A frame begun in the last chunk continues: one allocation for
            // both parts, not a growth per part.
            let begun = std::mem::take(&mut self.chunk);
            self.assembling.reserve(begun.len() + chunk.len());
            self.assembling.extend_from_slice(&begun);
        }
        self.assembling.extend_from_slice(&chunk);
    }

    /// Bytes received and not yet decoded.
    pub fn len(&self) -> usize {
        self.chunk.len() + self.assembling.len()
    }

    /// True when no received byte is left undecoded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory held for assembling frames, beyond quinn's own chunks.
    pub fn assembling_capacity(&self) -> usize {
        self.assembling.capacity()
    }
}

/// Decodes frames from bytes as they arrive, in any split.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_message: u32,
}

impl FrameDecoder {
    /// A decoder that refuses message frames over `max_message` bytes
    /// (header and status frames: [`MAX_CONTROL_FRAME`]).
    pub fn new(max_message: u32) -> Self {
        Self { max_message }
    }

    fn limit(&self, kind: FrameType) -> u32 {
        match kind {
            FrameType::Message => self.max_message,
            FrameType::Header | FrameType::Status => MAX_CONTROL_FRAME,
        }
    }

    /// Takes one whole frame off the front of `input`, or returns `None`
    /// (leaving `input` as it was) if more bytes are needed.
    pub fn decode(&self, input: &mut Unframed) -> Result<Option<Frame>, FrameError> {
        if !input.assembling.is_empty() {
            return self.decode_assembling(&mut input.assembling);
        }
        let chunk = &mut input.chunk;
        let Some((kind, len)) = self.header(chunk)? else {
            return Ok(None);
        };
        if chunk.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        chunk.advance(FRAME_HEADER_LEN);
        let payload = chunk.split_to(len);
        Ok(Some(Frame { kind, payload }))
    }

    fn decode_assembling(&self, buffer: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some((kind, len)) = self.header(buffer)? else {
            return Ok(None);
        };
        let total = FRAME_HEADER_LEN + len;
        if buffer.len() < total {
            buffer.reserve((total - buffer.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        // A buffer holding exactly the frame is handed over whole: splitting
        // it would make its allocation shared, which allocates again.
        let mut frame = match buffer.len() == total {
            true => std::mem::take(buffer),
            false => buffer.split_to(total),
        };
        frame.advance(FRAME_HEADER_LEN);
        Ok(Some(Frame {
            kind,
            payload: frame.freeze(),
        }))
    }

    /// The type and payload length of the frame at the front of `bytes`,
    /// checked against its limit, once its header has arrived.
    fn header(&self, bytes: &[u8]) -> Result<Option<(FrameType, usize)>, FrameError> {
        let Some(&[kind, l0, l1, l2, l3]) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let kind = FrameType::from_byte(kind).ok_or(FrameError::UnknownType(kind))?;
        let declared = u32::from_be_bytes([l0, l1, l2, l3]);
        let limit = self.limit(kind);
        if declared > limit {
            return Err(FrameError::TooLarge {
                kind,
                declared,
                limit,
            });
        }
        Ok(Some((kind, declared as usize)))
    }

    /// Checks what is left when the stream has ended.
    pub fn finish(&self, input: &Unframed) -> Result<(), FrameError> {
        match input.len() {
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

pub(crate) fn put_frame_header(out: &mut BytesMut, kind: FrameType, len: usize) {
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

    fn unframed(bytes: &[u8]) -> Unframed {
        let mut input = Unframed::default();
        input.push(Bytes::copy_from_slice(bytes));
        input
    }

    fn decode_all(decoder: &FrameDecoder, buffer: &mut Unframed) -> Vec<Frame> {
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
            let mut buffer = unframed(&whole[..split]);
            let early = decode_all(&decoder, &mut buffer);
            if split < whole.len() {
                assert!(
                    early.is_empty(),
                    "split {split}: no frame before all bytes arrived"
                );
                assert_eq!(buffer.len(), split, "split {split}: nothing consumed early");
            }
            buffer.push(Bytes::copy_from_slice(&whole[split..]));
            let frames = [early, decode_all(&decoder, &mut buffer)].concat();
            assert_eq!(frames.len(), 1, "split {split}");
            assert_eq!(frames[0].payload, &b"hello, frame"[..]);
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn several_frames_in_one_buffer_come_out_in_order() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut bytes = frame_bytes(FrameType::Header, b"h");
        bytes.extend_from_slice(&frame_bytes(FrameType::Message, b"m"));
        bytes.extend_from_slice(&frame_bytes(FrameType::Status, b""));
        let mut buffer = unframed(&bytes);
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
        let mut buffer = unframed(&frame_bytes(FrameType::Message, &at_limit));
        assert_eq!(
            decoder.decode(&mut buffer).unwrap().unwrap().payload.len(),
            LIMIT as usize
        );

        let mut over = unframed(&frame_bytes(FrameType::Message, &[7u8; LIMIT as usize + 1]));
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
        // The header split over two chunks, so the decoder assembles it.
        let mut buffer = unframed(&[0x02, 0xff, 0xff]);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        buffer.push(Bytes::from_static(&[0xff, 0xff]));
        let err = decoder.decode(&mut buffer).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                declared: u32::MAX,
                ..
            }
        ));
        assert!(
            buffer.assembling_capacity() < 1024,
            "nothing was reserved for the payload"
        );
    }

    #[test]
    fn a_large_declared_frame_reserves_little_until_its_bytes_arrive() {
        let decoder = FrameDecoder::new(u32::MAX);
        let mut header = BytesMut::new();
        put_frame_header(&mut header, FrameType::Message, 4 * 1024 * 1024);
        let mut buffer = unframed(&header);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        buffer.push(Bytes::from_static(b"x"));
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        assert!(
            buffer.assembling_capacity() <= buffer.len() + RESERVE_AHEAD,
            "6 bytes reserved {} bytes",
            buffer.assembling_capacity()
        );
    }

    #[test]
    fn control_frames_have_their_own_limit() {
        let decoder = FrameDecoder::new(u32::MAX);
        let mut header = BytesMut::new();
        put_frame_header(
            &mut header,
            FrameType::Header,
            MAX_CONTROL_FRAME as usize + 1,
        );
        let mut buffer = unframed(&header);
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
        let mut buffer = unframed(&frame_bytes(FrameType::Message, b""));
        let frame = decoder.decode(&mut buffer).unwrap().unwrap();
        assert_eq!((frame.kind, frame.payload.len()), (FrameType::Message, 0));
    }

    #[test]
    fn an_unknown_frame_type_is_an_error_naming_it() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = unframed(&[0x09, 0, 0, 0, 0]);
        let err = decoder.decode(&mut buffer).unwrap_err();
        assert_eq!(err, FrameError::UnknownType(0x09));
        assert_eq!(err.to_string(), "unknown frame type 0x09");
    }

    #[test]
    fn a_stream_ending_inside_a_frame_is_truncated() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut buffer = unframed(&frame_bytes(FrameType::Message, b"abc")[..6]);
        assert_eq!(decoder.decode(&mut buffer), Ok(None));
        assert_eq!(
            decoder.finish(&buffer),
            Err(FrameError::Truncated { buffered: 6 })
        );
        assert_eq!(decoder.finish(&Unframed::default()), Ok(()));
    }

    #[test]
    fn message_frames_encode_in_place() {
        let mut out = BytesMut::new();
        let status = crate::rpc::wire::proto::Status {
            code: 5,
            message: "x".into(),
            ..Default::default()
        };
        put_message_frame(&mut out, FrameType::Status, &status);
        let frame = FrameDecoder::new(LIMIT)
            .decode(&mut unframed(&out))
            .unwrap()
            .unwrap();
        assert_eq!(
            <crate::rpc::wire::proto::Status as prost::Message>::decode(frame.payload).unwrap(),
            status
        );
    }

    #[test]
    fn whole_frames_in_a_chunk_are_views_of_it() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut bytes = frame_bytes(FrameType::Message, b"first");
        bytes.extend_from_slice(&frame_bytes(FrameType::Message, b"second"));
        let chunk = bytes.freeze();
        let received = chunk.as_ptr_range();
        let mut buffer = Unframed::default();
        buffer.push(chunk.clone());
        for frame in decode_all(&decoder, &mut buffer) {
            assert!(received.contains(&frame.payload.as_ptr()), "not copied");
        }
        assert_eq!(buffer.assembling_capacity(), 0, "nothing assembled");
    }

    #[test]
    fn a_frame_spanning_chunks_is_assembled_and_the_rest_follows() {
        let decoder = FrameDecoder::new(LIMIT);
        let mut bytes = frame_bytes(FrameType::Message, &[1; 100]);
        bytes.extend_from_slice(&frame_bytes(FrameType::Status, b"ok"));
        let mut buffer = Unframed::default();
        for piece in bytes.chunks(30) {
            buffer.push(Bytes::copy_from_slice(piece));
        }
        let frames = decode_all(&decoder, &mut buffer);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].payload, vec![1; 100]);
        assert_eq!(frames[1].payload, &b"ok"[..]);
        assert!(buffer.is_empty());
    }
}
