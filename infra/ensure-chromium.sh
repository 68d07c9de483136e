#!/usr/bin/env bash
# Makes Debian's Chromium available for the browser tests (tests/src/web-client.e2e.spec.ts), the way
# ensure-services.sh makes Postgres available: installed from the OS packages when missing and running as
# root, quickly when it is there. Never fatal: without Chromium the browser tests are skipped with the
# reason printed. CHROMIUM_PATH names another binary (it is then only checked, never installed).
set -uo pipefail
log() { echo "[chromium] $*" >&2; }
bin="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$bin" ]; then exit 0; fi
if [ -n "${CHROMIUM_PATH:-}" ]; then log "CHROMIUM_PATH=$bin is not executable; browser tests will be skipped"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "no $bin and cannot install it (need root and apt-get); browser tests will be skipped"
  exit 0
fi
log "installing chromium from the OS packages (once)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  log "apt-get could not install chromium; browser tests will be skipped"
fi
[ -x "$bin" ] && log "$("$bin" --version 2>/dev/null || echo chromium) installed"
exit 0
