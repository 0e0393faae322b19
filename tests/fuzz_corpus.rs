//! Replays every committed fuzz input (fuzz/corpus/<target>/) through the
//! fuzz targets' bodies on the stable toolchain, so inputs that once found
//! a bug keep passing. scripts/fuzz.sh adds to the corpora.

use std::path::{Path, PathBuf};

use peerd::test_utils::fuzz;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

/// A panic in any thread (a handler task, say) fails the test, as it
/// crashes the fuzzer.
fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::abort();
    }));
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    abort_on_panic();
    let inputs = corpus(target);
    for (path, bytes) in &inputs {
        eprintln!("{}", path.display());
        run(bytes);
    }
    println!("{target}: {} inputs replayed", inputs.len());
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder", fuzz::frame_decoder);
}

#[test]
fn messages_corpus() {
    replay("messages", fuzz::messages);
}

#[test]
fn rpc_server_corpus() {
    let rig = fuzz::RpcRig::new();
    replay("rpc_server", |bytes| rig.run(bytes));
}

#[test]
fn rpc_client_corpus() {
    let rig = fuzz::CallerRig::new();
    replay("rpc_client", |bytes| rig.run(bytes));
}
