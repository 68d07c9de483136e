#!/usr/bin/env bash
# Installs pnpm (when missing) and the workspace's dependencies from the lockfile; quick when done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v pnpm >/dev/null; then
  echo "[deps] installing pnpm 10" >&2
  npm install -g pnpm@10 >/dev/null 2>&1 || npm install -g --prefix "$HOME/.local" pnpm@10 >/dev/null
  export PATH="$HOME/.local/bin:$PATH"
fi
stamp=node_modules/.chat-install-stamp
if [ ! -f "$stamp" ] || [ pnpm-lock.yaml -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "[deps] pnpm install" >&2
  CI=true pnpm install --frozen-lockfile --reporter=append-only 2>&1 | grep -v '^Progress' | tail -5 >&2
  touch "$stamp"
fi
