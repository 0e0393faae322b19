#!/usr/bin/env bash
# The workspace's layering rules: no import cycle between the library's
# top-level modules, between rpc's submodules, or between the daemon's
# modules; and the library crate depends on none of the daemon's crates.
set -euo pipefail
cd "$(dirname "$0")/.."

check() {
  if ! out=$(python3 scripts/check-module-cycles.py "$@"); then
    printf '%s\n' "$out"
    echo "module cycle in $*" >&2
    exit 1
  fi
  echo "no module cycles: $*"
}
check crates/peerd/src
check crates/peerd/src rpc
check src

# Proc macros left out: prost-derive uses anyhow inside the compiler, and
# none of it reaches the library's code or an embedder's binary.
daemon_only='^(clap|clap_complete|anyhow|tracing-subscriber|sd-notify|toml) '
if cargo tree --locked -p peerd -e normal,no-proc-macro --prefix none | grep -E "$daemon_only"; then
  echo "the library crate depends on a daemon-only crate (above)" >&2
  exit 1
fi
echo "library dependencies: none of clap, clap_complete, anyhow, tracing-subscriber, sd-notify, toml"
