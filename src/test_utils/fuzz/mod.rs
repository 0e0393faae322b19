//! The fuzz targets' bodies. `fuzz/fuzz_targets/*.rs` call these with
//! libFuzzer's input; `tests/fuzz_corpus.rs` calls them with every file of
//! `fuzz/corpus/<target>/`, so inputs that once crashed stay fixed on the
//! stable toolchain. Each panics when an invariant breaks.

mod frames;
mod messages;
mod ops;
mod rpc;

pub use frames::frame_decoder;
pub use messages::messages;
pub use rpc::RpcRig;
