#!/usr/bin/env bash
# The web client's browser tests: Debian's Chromium (installed when missing; never a browser
# download), playwright-core from the npm registry at the version tests/browser's lockfile pins,
# Node.js's test runner. The tests start the debug standalone binary themselves (`make build`
# builds it) and save screenshots of the main screens to docs/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -- "$@"; fi
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== browser tests (Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), Node.js $(node --version))"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
cd tests/browser && npm test
