#!/usr/bin/env bash
# Installs what the tests use besides the Rust toolchain, so that the
# README's test command runs on a fresh machine; idempotent, quick when all
# is there. Debian packages (as root): promtool (tests/metrics.rs checks
# its exposition with it), iproute2 and iptables (tests/nat.rs's
# namespaces and NAT routers), util-linux's unshare (tests/readme.rs),
# Chromium, Node.js and npm (tests/browser.rs). Then the Python venv of the
# gateway tests (scripts/python-venv.sh) and the browser page's npm
# packages and build (scripts/browser-setup.sh).
#   scripts/test-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
command -v unshare >/dev/null || missing+=(util-linux)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test-deps: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
scripts/python-venv.sh
scripts/browser-setup.sh
