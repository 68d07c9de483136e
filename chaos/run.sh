#!/usr/bin/env bash
# `pnpm chaos [--quick] [--seed=N]` — see the README's "Reliability" section. Installs the dependencies
# when needed; starts its own Postgres cluster and nats-server (the OS packages' binaries must be there:
# apt-get install postgresql nats-server), never the machine's shared ones.
set -euo pipefail
# Like npm test: on the machine's Node, on a glibc the gateway's uWebSockets.js can load (README "Runtime").
source "$(dirname "$0")/../infra/node-runtime.sh"
cd "$(dirname "$0")/.."
source infra/ensure-deps.sh
have_nats() { command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; }
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! have_nats; then
  echo "[chaos] needs the PostgreSQL server binaries and nats-server: apt-get install postgresql nats-server" >&2
  exit 2
fi
exec node --max-old-space-size=4096 --import tsx chaos/src/main.ts "$@"
