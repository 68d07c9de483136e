#!/usr/bin/env bash
# `npm test`: every test tier (unit, int, e2e) against real Postgres and NATS. Installs dependencies and
# makes the local services ready first; testcontainers are used instead when a Docker engine answers.
# Chromium for the browser tests is installed when missing (as root); without it they are skipped.
set -euo pipefail
source "$(dirname "$0")/node-runtime.sh"
cd "$(dirname "$0")/.."
source infra/ensure-deps.sh
bash infra/ensure-services.sh
bash infra/ensure-chromium.sh
echo "[test] Node $(node --version) ($CHAT_NODE_RUNTIME): $(command -v node)" >&2
exec node_modules/.bin/vitest run "$@"
