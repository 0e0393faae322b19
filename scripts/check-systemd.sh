#!/usr/bin/env bash
# Static checks of systemd/peerd.service; exits non-zero if any fails:
#   1. `systemd-analyze verify`: syntax, dependencies, ExecStart binary.
#   2. `systemd-analyze security --offline`: overall exposure at most 2.0, for the
#      unit alone and with its drop-in systemd/operators.conf (the operator group).
# Needs: systemd-analyze (Debian's systemd package is installed if it is missing,
# which needs root and apt). The unit does not have to be installed, nor peerd:
# verify runs with --root= on a throwaway tree holding the host's unit files, the
# unit and a stub /usr/local/bin/peerd, so nothing outside that tree is touched.
set -euo pipefail

unit=$(cd "$(dirname "$0")/.." && pwd)/systemd/peerd.service
dropin=$(dirname "$unit")/operators.conf
# --threshold counts tenths of the score shown in the report: 20 means 2.0.
max_exposure=20

if ! command -v systemd-analyze >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# --root= resolves every unit inside the tree, so the targets peerd.service pulls
# in (sysinit.target, network-online.target, ...) must be there too.
mkdir -p "$root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
install -D -m 0644 "$unit" "$root/etc/systemd/system/peerd.service"
install -D -m 0755 /dev/null "$root/usr/local/bin/peerd"

echo "== systemd-analyze verify $unit"
# verify exits 0 when it merely ignores an unparsable setting, so any message
# about the unit counts as a failure.
if ! out=$(systemd-analyze verify --root="$root" "$root/etc/systemd/system/peerd.service" 2>&1) \
   || grep -q 'peerd\.service' <<<"$out"; then
  echo "$out"
  echo "FAIL: systemd-analyze verify" >&2
  exit 1
fi
[ -z "$out" ] || echo "$out"
echo "ok"

# The unit with its drop-in, as systemd merges them: later assignments win.
merged="$root/peerd-operators.service"
cat "$unit" <(echo) "$dropin" >"$merged"
for checked in "$unit" "$merged"; do
  echo "== systemd-analyze security --offline=true --threshold=$max_exposure $checked"
  if ! systemd-analyze security --offline=true --threshold="$max_exposure" "$checked"; then
    echo "FAIL: exposure above $((max_exposure / 10)).$((max_exposure % 10))" >&2
    exit 1
  fi
done
