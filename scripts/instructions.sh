#!/usr/bin/env bash
# Instructions one call costs the whole process (both threads), raw quinn and
# peerd, counted by callgrind: unlike wall or CPU time, the count hardly moves
# with the machine's neighbours. Each side runs a bench of the criterion
# harness for 2 s and for a longer time; the difference in instructions over
# the difference in calls leaves start-up (keys, handshakes) out.
# Usage: scripts/instructions.sh [BENCH] [SECONDS]   (needs valgrind)
# BENCH is a bench id without its side, default unary_echo/1KiB_x64.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${1:-unary_echo/1KiB_x64}
long=${2:-14}
group=${bench%%/*}
work=${bench#*/}

binary=$(cargo bench --bench rpc_vs_quinn --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*rpc_vs_quinn[^"]*\)".*/\1/p' | tail -1)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Instructions and calls of one run: every call finishes two send streams
# (the caller's request and the callee's answer) through quinn's API.
count() {
  local out=$dir/$1.$2
  valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" --bench \
    --profile-time "$2" "$group/$1/$work" >/dev/null 2>&1
  awk '
    /^summary:/ { total = $2 }
    /^c?fn=\(/ {
      match($0, /\(([0-9]+)\)/); id = substr($0, RSTART + 1, RLENGTH - 2)
      if ($0 ~ /\) quinn::send_stream::SendStream::finish$/) finish = id
      counting = ($0 ~ /^cfn=/ && id == finish)
      next
    }
    /^calls=/ && counting { split($1, c, "="); finishes += c[2] }
    END { printf "%d %d\n", total, finishes / 2 }
  ' "$out"
}

for side in quinn peerd; do
  read -r short_total short_calls < <(count "$side" 2)
  read -r long_total long_calls < <(count "$side" "$long")
  calls=$((long_calls - short_calls))
  echo "$side $bench: $((  (long_total - short_total) / calls )) instructions per call ($calls calls counted)"
done
