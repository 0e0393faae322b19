//! Fuzzing the frame decoder: any bytes, split anywhere, under any limit.

use bytes::{Bytes, BytesMut};

use crate::rpc::wire::codec::{
    FRAME_HEADER_LEN, Frame, FrameDecoder, FrameError, RESERVE_AHEAD, Unframed, put_frame,
};

/// Limits worth trying: none, tiny, around a frame header, the default.
const LIMITS: [u32; 5] = [0, 1, 16, 1024, 4 * 1024 * 1024];

/// `data[0]` picks the message limit, `data[1]` how the rest is split into
/// arriving chunks. Checks that decoding never panics, that the split does
/// not change the outcome, that frames respect their limits and re-encode to
/// the bytes they came from, and that the buffer never grows far beyond the
/// bytes that arrived.
pub fn frame_decoder(data: &[u8]) {
    let [limit, chunking, stream @ ..] = data else {
        return;
    };
    let decoder = FrameDecoder::new(LIMITS[*limit as usize % LIMITS.len()]);
    let whole = decode_in_chunks(&decoder, stream, stream.len().max(1));
    let split = decode_in_chunks(&decoder, stream, *chunking as usize % 7 + 1);
    assert_eq!(whole, split, "the split changed the outcome");
    let (frames, _) = whole;
    let mut encoded = BytesMut::new();
    for frame in &frames {
        put_frame(&mut encoded, frame.kind, &frame.payload);
    }
    assert_eq!(&encoded[..], &stream[..encoded.len()], "frames re-encode");
}

/// Feeds `stream` `chunk` bytes at a time; returns the frames and how the
/// stream ended.
fn decode_in_chunks(
    decoder: &FrameDecoder,
    stream: &[u8],
    chunk: usize,
) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut buffer = Unframed::default();
    let mut frames = Vec::new();
    for (i, piece) in stream.chunks(chunk).enumerate() {
        buffer.push(Bytes::copy_from_slice(piece));
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Err(e)),
            }
        }
        let arrived = (i + 1) * chunk;
        assert!(
            buffer.assembling_capacity() <= 2 * (arrived + FRAME_HEADER_LEN + RESERVE_AHEAD),
            "{} bytes reserved after {arrived} arrived",
            buffer.assembling_capacity()
        );
    }
    (frames, decoder.finish(&buffer))
}
