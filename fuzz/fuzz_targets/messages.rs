//! Every protobuf message a node decodes from the network.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| peerd::test_utils::fuzz::messages(data));
