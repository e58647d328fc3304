#!/usr/bin/env bash
# Browser tests: installs what they need (Debian's chromium, playwright-core), builds the
# `authkit` binary if needed, then runs the suite. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
if ! [ -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium…"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y chromium >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y chromium >/dev/null; }
fi
if ! [ -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
: "${AUTHKIT_BIN:?set AUTHKIT_BIN to the built authkit binary}"
rm -rf artifacts
node --test --test-concurrency=1 tests/
