//! The fuzz targets' bodies. `fuzz/fuzz_targets/*.rs` call these with
//! libFuzzer's input; `tests/fuzz_corpus.rs` calls them with every file of
//! `fuzz/corpus/<target>/`, so inputs that once crashed stay fixed on the
//! stable toolchain. Each panics when an invariant breaks.

mod callee;
mod caller;
mod frames;
mod messages;
mod ops;
mod rpc;
mod script;

pub use caller::CallerRig;
pub use frames::frame_decoder;
pub use messages::messages;
pub use rpc::RpcRig;

/// The runtime a stateful target's nodes live on, across all its inputs.
fn rig_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
