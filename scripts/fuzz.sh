#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ one after the other, each for N minutes,
# then merges the inputs that add coverage into fuzz/corpus/<target>/, which
# tests/fuzz_corpus.rs replays on every `cargo test`.
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]     default: 5 minutes, every target
#
# Needs cargo-fuzz (installed from crates.io if missing) and a nightly
# toolchain; without one, the stable toolchain is used with RUSTC_BOOTSTRAP=1.
# FUZZ_SANITIZER=none skips AddressSanitizer if its runtime is missing.
# A crash stops the script; the input is in fuzz/artifacts/<target>/: fix the
# bug, then copy the input into fuzz/corpus/<target>/ so it stays fixed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

minutes=${1:-5}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_decoder messages rpc_server rpc_client)

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly)
else
    echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
fi
sanitizer=${FUZZ_SANITIZER:-address}
work=${FUZZ_WORK:-${TMPDIR:-/tmp}/peerd-fuzz}

max_len() {
    case $1 in
        rpc_server | rpc_client) echo 512 ;;
        messages) echo 2048 ;;
        *) echo 8192 ;;
    esac
}

# Replaces the generated inputs of the committed corpus (named by their
# SHA-1) by the fewest that cover the same edges; named inputs (seeds, old
# crashers) always stay.
minimize() {
    local fresh
    fresh=$(mktemp -d)
    "${cargo[@]}" fuzz run --sanitizer "$sanitizer" -O "$1" "$fresh" "corpus/$1" "$work/$1" -- \
        -merge=1 -use_counters=0 -max_len="$(max_len "$1")" >/dev/null 2>&1
    find "corpus/$1" -regextype egrep -regex '.*/[0-9a-f]{40}' -delete
    mv "$fresh"/* "corpus/$1/" 2>/dev/null || true
    rm -rf "$fresh"
    # A generated input with a named one's content is a duplicate.
    find "corpus/$1" -type f -regextype egrep ! -regex '.*/[0-9a-f]{40}' | while read -r named; do
        rm -f "corpus/$1/$(sha1sum <"$named" | cut -c1-40)"
    done
}

for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "corpus/$target"
    echo "== $target: $minutes min, sanitizer $sanitizer"
    "${cargo[@]}" fuzz run --sanitizer "$sanitizer" -O "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time=$((minutes * 60)) -max_len="$(max_len "$target")" -timeout=20 \
        -print_final_stats=1 2>&1 | tee "$work/$target.log" | grep -E '^(#[0-9]+.*(DONE|INITED)|stat::|==|INFO: Running)' || true
    if grep -qE 'ERROR: libFuzzer|panicked|deadly signal' "$work/$target.log"; then
        echo "!! $target crashed: see $work/$target.log and fuzz/artifacts/$target/" >&2
        exit 1
    fi
    minimize "$target"
    echo "== $target: no crash; corpus/$target has $(ls "corpus/$target" | wc -l) inputs"
done
