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

use std::net::SocketAddr;
use std::time::Duration;

use crate::connection::NodeConnection;
use crate::{CallOptions, Node, NodeId};

/// After an input, handlers end, streams settle and a normal call succeeds
/// within this.
const RECOVERY: Duration = Duration::from_secs(5);

/// The runtime a stateful target's nodes live on, across all its inputs.
fn rig_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The caller's connection to the callee, dialed if it has none.
async fn connect(caller: &Node, callee: NodeId, addr: SocketAddr) -> NodeConnection {
    caller
        .manager()
        .get_or_connect(callee, &[addr])
        .await
        .expect("the caller connects to the callee")
}

/// Whether `settled` comes to hold within `RECOVERY`.
async fn settles(mut settled: impl FnMut() -> bool) -> bool {
    let waited = async {
        while !settled() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(RECOVERY, waited).await.is_ok()
}

/// A normal call from `caller` gets its answer, over the same `connection`.
async fn check_serves_again(caller: &Node, callee: NodeId, connection: &NodeConnection) {
    let options = CallOptions::default().with_timeout(RECOVERY);
    crate::node_service::ping(caller.client(), callee, &options)
        .await
        .expect("a normal call succeeds afterwards");
    let now = caller.manager().connection(callee);
    assert!(
        now.is_some_and(|now| now.same_as(connection)),
        "the connection survived"
    );
}
