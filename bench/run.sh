#!/usr/bin/env bash
# `pnpm bench [scenario…] [--duration=s] [--events=n] [--cpu-prof]` — see bench/README.md.
# Like `npm test`, it installs the dependencies and readies Postgres + NATS first, so it runs as is on a
# fresh clone.
set -euo pipefail
source "$(dirname "$0")/../infra/node-runtime.sh"
cd "$(dirname "$0")/.."
source infra/ensure-deps.sh
bash infra/ensure-services.sh
exec node --import tsx bench/src/main.ts "$@"
