//! The frame decoder: any bytes, any split, any limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerd::test_utils::fuzz::frame_decoder(data));
