#!/usr/bin/env bash
# Instructions one call costs the whole process (both threads), raw quinn and
# peerd, counted by callgrind: unlike wall or CPU time, the count hardly moves
# with the machine's neighbours. Each side runs a bench of the criterion
# harness for 2 s and for a longer time; the difference in instructions over
# the difference in calls leaves start-up (keys, handshakes) out.
# With --cache, callgrind also simulates the caches (32 KiB L1i, 48 KiB L1d
# here) and the script prints each side's L1 misses per call; slower.
# Usage: scripts/instructions.sh [--cache] [BENCH] [SECONDS]   (needs valgrind)
# BENCH is a bench id without its side, default unary_echo/1KiB_x64.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=no
if [[ ${1:-} == --cache ]]; then
  cache=yes
  shift
fi
bench=${1:-unary_echo/1KiB_x64}
long=${2:-14}
group=${bench%%/*}
work=${bench#*/}

binary=$(cargo bench --bench rpc_vs_quinn --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*rpc_vs_quinn[^"]*\)".*/\1/p' | tail -1)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# One run's calls, then its totals of callgrind's events (Ir first; with the
# cache simulation also Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw). Every call
# finishes two send streams (the caller's request and the callee's answer)
# through quinn's API.
count() {
  local out=$dir/$1.$2
  valgrind --tool=callgrind --cache-sim="$cache" --callgrind-out-file="$out" "$binary" \
    --bench --profile-time "$2" "$group/$1/$work" >/dev/null 2>&1
  awk '
    /^summary:/ { $1 = ""; totals = $0 }
    /^c?fn=\(/ {
      match($0, /\(([0-9]+)\)/); id = substr($0, RSTART + 1, RLENGTH - 2)
      if ($0 ~ /\) quinn::send_stream::SendStream::finish$/) finish = id
      counting = ($0 ~ /^cfn=/ && id == finish)
      next
    }
    /^calls=/ && counting { split($1, c, "="); finishes += c[2] }
    END { printf "%d%s\n", finishes / 2, totals }
  ' "$out"
}

for side in quinn peerd; do
  read -r -a brief < <(count "$side" 2)
  read -r -a full < <(count "$side" "$long")
  calls=$((full[0] - brief[0]))
  per_call() { echo $(((full[$1] - brief[$1]) / calls)); }
  line="$side $bench: $(per_call 1) instructions per call"
  if [[ $cache == yes ]]; then
    line+=", L1 misses per call: $(per_call 4) instruction, $(($(per_call 5) + $(per_call 6))) data"
  fi
  echo "$line ($calls calls counted)"
done
