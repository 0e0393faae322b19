#!/usr/bin/env bash
# Prepares the browser agent tests (tests/browser/run.mjs): installs the
# pinned browser/package-lock.json and builds browser/dist. Idempotent: an
# install whose lock file matches the stamp is left as it is.
#   scripts/browser-setup.sh
set -euo pipefail
cd "$(dirname "$0")/../browser"
if [ ! -x /usr/bin/chromium ]; then
    echo "browser-setup: /usr/bin/chromium is missing; install Debian's chromium: apt-get install chromium" >&2
    exit 1
fi
if ! command -v npm >/dev/null; then
    echo "browser-setup: npm is missing; install Debian's nodejs and npm: apt-get install nodejs npm" >&2
    exit 1
fi
stamp=node_modules/.package-lock.stamp
if [ -d node_modules ] && cmp -s package-lock.json "$stamp"; then
    echo "browser node_modules is up to date"
else
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
    echo "browser node_modules ready"
fi
npm run --silent build
echo "browser agent built in browser/dist"
