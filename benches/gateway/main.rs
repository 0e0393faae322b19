//! The agent gateway against what it stands for, side by side in one run:
//! unary echo calls agent → gateway → QUIC → gateway → agent, the same calls
//! made in-process through the library (node → QUIC → node), and the two
//! agents calling each other directly over tonic. Every part (both daemons,
//! agent B, the caller) runs on its own OS thread with a one-thread runtime,
//! as separate processes would. docs/performance.md records runs.
//!
//! `cargo bench --bench gateway` measures; without `--bench` (as `cargo test
//! --benches` runs it) each path makes a few checked calls and exits.

mod agent;
#[path = "../support/cpu.rs"]
mod cpu;
mod measure;
mod topology;

use std::time::Duration;

use measure::{Caller, Path, Results};
use topology::Topology;

const PAYLOAD: usize = 1024;
const IN_FLIGHT: [usize; 2] = [1, 64];
/// Rounds of one slot per path and concurrency, the paths' order rotating
/// each round, so that drift on a noisy machine hits all paths alike.
const ROUNDS: usize = 30;
const SLOT: Duration = Duration::from_millis(200);

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let topology = Topology::start();
    let runtime = topology::one_thread_runtime();
    runtime.block_on(async {
        let caller = Caller::connect(&topology, PAYLOAD).await;
        if !measuring {
            for path in Path::ALL {
                caller.check(path).await;
            }
            println!("gateway bench: every path echoes correctly (smoke run)");
            return;
        }
        measure::slot(&caller, Path::Gateway, 64, SLOT).await;
        let mut results = Results::default();
        for round in 0..ROUNDS {
            for in_flight in IN_FLIGHT {
                for path in Path::rotated(round) {
                    let slot = measure::slot(&caller, path, in_flight, SLOT).await;
                    results.add(path, in_flight, slot);
                }
            }
        }
        results.print(PAYLOAD, &IN_FLIGHT);
        caller.close().await;
    });
}
