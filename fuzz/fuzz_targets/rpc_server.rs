//! The RPC server driven by arbitrary frame, finish, reset and stop
//! sequences on a live connection; one pair of nodes serves every input.
#![no_main]

use std::sync::OnceLock;

use peerd::test_utils::fuzz::RpcRig;

static RIG: OnceLock<RpcRig> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| RIG.get_or_init(RpcRig::new).run(data));
