#!/usr/bin/env bash
# The soak of issue 21: every hostile-peer and hostile-neighbour attack at
# once against one release `peerd run`, while a legitimate peer pings it
# every 100 ms (tests/soak.rs). Prints the legitimate calls' success rate and
# latencies and the daemon's RSS every 5 s; fails past the bounds.
#
#   SOAK_SECS=300 scripts/soak.sh      default: 300 seconds
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECS=${SOAK_SECS:-300}
exec cargo test --release --test soak -- --ignored --nocapture
