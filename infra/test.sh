#!/usr/bin/env bash
# `npm test`: every test tier (unit, int, e2e) against real Postgres and NATS. Installs dependencies and
# makes the local services ready first; testcontainers are used instead when a Docker engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/ensure-deps.sh
bash infra/ensure-services.sh
exec node_modules/.bin/vitest run "$@"
