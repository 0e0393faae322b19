#!/usr/bin/env bash
# Holds N idle connections (default 10,000) to one `peerd run` daemon, each
# from its own node and after one call, and reports the daemon's resident
# memory per connection. Release build; loopback only.
# Usage: scripts/scale.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}

cargo build --release --quiet --bin peerd --example hold_connections
# The daemon has one UDP socket; the holder has one per client node.
ulimit -n $((n + 1024))

dir=$(mktemp -d)
daemon_pid=
holder_pid=
cleanup() {
  [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

target/release/peerd run --data-dir "$dir" --listen 127.0.0.1:0 \
  --set "transport.max_connections=$((n + 100))" --set metrics.listen=off \
  --log-level warn >"$dir/out" 2>"$dir/err" &
daemon_pid=$!
until grep -q '^reach: ' "$dir/out"; do sleep 0.1; done
peer=$(sed -n 's/^reach: //p' "$dir/out" | head -1)

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status"; }
before=$(rss_kib)
SECONDS=0
target/release/examples/hold_connections "$peer" "$n" >"$dir/holder" &
holder_pid=$!
until grep -q '^held ' "$dir/holder"; do
  kill -0 "$holder_pid" 2>/dev/null || { echo "the holder failed" >&2; exit 1; }
  sleep 0.2
done
took=$SECONDS
sleep 3 # let the last handshakes' buffers settle
after=$(rss_kib)
held=$(PEERD_ADMIN_SOCKET="$dir/admin.sock" target/release/peerd status --json | sed -n 's/.*"connections_inbound": \([0-9]*\).*/\1/p')

echo "connections held by the daemon: $held of $n (opened in ${took} s)"
echo "daemon RSS: $before KiB before, $after KiB after"
echo "per idle connection: $(( (after - before) / n )) KiB"
