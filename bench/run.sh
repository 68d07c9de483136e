#!/usr/bin/env bash
# `pnpm bench [scenario…] [--duration=s] [--events=n] [--cpu-prof]` — see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx bench/src/main.ts "$@"
