//! Frames on their way to a stream, encoded without copying large payloads:
//! a `bytes` field of a message (prost hands it over as `Bytes`) is kept by
//! reference and written to quinn as its own chunk.

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::codec::{FRAME_HEADER_LEN, FrameType, put_frame_header};

/// Payloads at least this long are passed on by reference; shorter ones are
/// copied next to their frame header, which is cheaper than another chunk.
pub(crate) const BY_REFERENCE_MIN: usize = 4096;

/// Room reserved for the other fields of a message whose payload is passed
/// by reference; more only costs a reallocation.
const FIELDS_BESIDE_PAYLOAD: usize = 64;

/// A message `OutFrames` can encode: any prost message, or a borrowed
/// stand-in with the same bytes (`super::borrowed`).
pub(crate) trait Encode {
    fn encoded_len(&self) -> usize;
    /// Appends the message's fields; `put_message` reserved the room.
    fn encode_raw(&self, out: &mut OutFrames);
}

impl<M: prost::Message> Encode for M {
    fn encoded_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        prost::Message::encode_raw(self, out);
    }
}

/// Encoded frames, in order: chunks already cut, then the bytes being
/// written.
#[derive(Debug, Default)]
pub(crate) struct OutFrames {
    chunks: Vec<Bytes>,
    tail: BytesMut,
}

impl OutFrames {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Room for `bytes` of frames (see `room_for`) in one allocation.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            chunks: Vec::new(),
            tail: BytesMut::with_capacity(bytes),
        }
    }

    /// The bytes `put_message` copies for `message`: its frame header and
    /// the message, or only its other fields if its payload goes by
    /// reference. An estimate for a message of 4 KiB or more made of smaller
    /// fields: all of it is copied, and the buffer grows while encoding.
    pub(crate) fn room_for(message: &impl Encode) -> usize {
        Self::room_for_len(message.encoded_len())
    }

    /// `room_for` a message whose encoded length is `len`, for a caller
    /// that already has it.
    pub(crate) fn room_for_len(len: usize) -> usize {
        FRAME_HEADER_LEN + copied_len(len)
    }

    /// Appends one frame whose payload is `message`.
    pub(crate) fn put_message(&mut self, kind: FrameType, message: &impl Encode) {
        let len = message.encoded_len();
        let needed = FRAME_HEADER_LEN + copied_len(len);
        // Exactly: a buffer frozen with room to spare is given a second
        // allocation to share it (`bytes`), one filled exactly is not.
        if self.tail.capacity() - self.tail.len() < needed {
            self.tail.reserve(needed);
        }
        put_frame_header(&mut self.tail, kind, len);
        message.encode_raw(self);
    }

    /// The frames as chunks for quinn, in order.
    pub(crate) fn into_chunks(mut self) -> Vec<Bytes> {
        self.cut_tail();
        self.chunks
    }

    /// The frames as one chunk, if nothing was kept by reference: the
    /// common case, which needs no list.
    pub(crate) fn into_single(self) -> Result<Bytes, Self> {
        match self.chunks.is_empty() {
            true => Ok(self.tail.freeze()),
            false => Err(self),
        }
    }

    /// Room allocated and not yet filled.
    #[cfg(test)]
    pub(crate) fn spare_room(&self) -> usize {
        self.tail.capacity() - self.tail.len()
    }

    fn cut_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push(self.tail.split().freeze());
        }
    }
}

/// Of a message `len` bytes long, the bytes copied into the frame buffer: a
/// message with a large payload needs room for its other fields only.
fn copied_len(len: usize) -> usize {
    if len < BY_REFERENCE_MIN {
        len
    } else {
        FIELDS_BESIDE_PAYLOAD
    }
}

// SAFETY: every method that touches uninitialised memory delegates to the
// `BytesMut` tail, which upholds `BufMut`'s contract; `put` only adds
// whole, initialised `Bytes` to the list.
unsafe impl BufMut for OutFrames {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, count: usize) {
        // SAFETY: the caller initialised `count` bytes of `chunk_mut()`,
        // which is the tail's.
        unsafe { self.tail.advance_mut(count) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.tail.chunk_mut()
    }

    fn put<T: Buf>(&mut self, mut src: T)
    where
        Self: Sized,
    {
        if src.remaining() < BY_REFERENCE_MIN {
            return self.tail.put(src);
        }
        self.cut_tail();
        // Zero-copy for `Bytes`, prost's type for large `bytes` fields.
        let payload = src.copy_to_bytes(src.remaining());
        self.chunks.push(payload);
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.tail.put_slice(src);
    }
}

/// A unary answer's first frame, `response`, with room for the OK status
/// after it: one allocation, filled exactly.
pub(crate) fn response_frames(response: &impl Encode) -> OutFrames {
    let room = OutFrames::room_for(response) + OK_STATUS_FRAME.len();
    let mut frames = OutFrames::with_capacity(room);
    frames.put_message(FrameType::Message, response);
    frames
}

/// The frame that ends every call that succeeds. The OK status encodes to
/// no bytes (each field at its default), so its frame is a bare header.
pub(crate) const OK_STATUS_FRAME: [u8; FRAME_HEADER_LEN] = [FrameType::Status as u8, 0, 0, 0, 0];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::wire::codec::{FrameDecoder, Unframed};

    #[derive(Clone, PartialEq, prost::Message)]
    struct Blob {
        #[prost(uint32, tag = "1")]
        id: u32,
        #[prost(bytes = "bytes", tag = "2")]
        payload: Bytes,
        #[prost(string, tag = "3")]
        note: String,
    }

    fn blob(len: usize) -> Blob {
        Blob {
            id: 7,
            payload: Bytes::from(vec![0xab; len]),
            note: "after the payload".into(),
        }
    }

    fn decoded(chunks: Vec<Bytes>) -> Vec<Blob> {
        let decoder = FrameDecoder::new(u32::MAX);
        let mut input = Unframed::default();
        chunks.into_iter().for_each(|chunk| input.push(chunk));
        let mut messages = Vec::new();
        while let Some(frame) = decoder.decode(&mut input).unwrap() {
            messages.push(prost::Message::decode(frame.payload).unwrap());
        }
        assert!(input.is_empty());
        messages
    }

    #[test]
    fn a_large_payload_is_passed_by_reference() {
        let message = blob(64 * 1024);
        let mut frames = OutFrames::new();
        frames.put_message(FrameType::Message, &message);
        frames.put_message(FrameType::Message, &blob(10));
        let chunks = frames.into_chunks();
        assert_eq!(chunks.len(), 3, "header, payload, the rest");
        assert_eq!(chunks[1].as_ptr(), message.payload.as_ptr(), "not copied");
        assert_eq!(decoded(chunks), [message, blob(10)]);
    }

    #[test]
    fn small_frames_stay_one_chunk() {
        let mut frames = OutFrames::new();
        frames.put_message(FrameType::Message, &blob(BY_REFERENCE_MIN - 1));
        frames.put_message(FrameType::Message, &blob(0));
        let single = frames.into_single().expect("nothing by reference");
        assert_eq!(decoded(vec![single]), [blob(BY_REFERENCE_MIN - 1), blob(0)]);
    }

    #[test]
    fn frames_given_room_up_front_share_one_allocation() {
        for len in [0, 1024, BY_REFERENCE_MIN - 100] {
            let (first, second) = (blob(40), blob(len));
            let room = OutFrames::room_for(&first) + OutFrames::room_for(&second);
            let mut frames = OutFrames::with_capacity(room);
            let buffer = frames.tail.as_ptr();
            frames.put_message(FrameType::Header, &first);
            frames.put_message(FrameType::Message, &second);
            assert_eq!(frames.tail.as_ptr(), buffer, "{len} B: reallocated");
            assert_eq!(decoded(frames.into_chunks()), [first, second]);
        }
    }

    #[test]
    fn the_encoding_is_the_same_as_a_copied_one() {
        let message = blob(BY_REFERENCE_MIN);
        let mut copied = BytesMut::new();
        crate::rpc::wire::codec::put_message_frame(&mut copied, FrameType::Message, &message);
        let mut frames = OutFrames::new();
        frames.put_message(FrameType::Message, &message);
        assert_eq!(frames.into_chunks().concat(), copied.to_vec());
    }
}
