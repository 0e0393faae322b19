//! The RPC client facing a callee that answers its calls with arbitrary
//! frames, finishes, resets and stops; one caller and callee serve every input.
#![no_main]

use std::sync::OnceLock;

use peerd::test_utils::fuzz::CallerRig;

static RIG: OnceLock<CallerRig> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| RIG.get_or_init(CallerRig::new).run(data));
