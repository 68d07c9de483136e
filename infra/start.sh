#!/usr/bin/env bash
# `npm start`: the whole system on local defaults. Installs dependencies, makes Postgres and NATS ready,
# runs migrations, then starts every service as its own process and stops them all (by PID) on Ctrl-C.
set -euo pipefail
source "$(dirname "$0")/node-runtime.sh"
cd "$(dirname "$0")/.."
source infra/ensure-deps.sh
bash infra/ensure-services.sh
echo "[start] Node $(node --version) ($CHAT_NODE_RUNTIME): $(command -v node)" >&2
TSX=node_modules/.bin/tsx
"$TSX" infra/migrate.ts

# The web client, built once (again only when its sources or the SDK's changed) and served by the
# command-api at / — same origin as the API, so the page needs no CORS.
web_dist=apps/web/dist
if [ ! -f "$web_dist/index.html" ] || [ -n "$(find apps/web/src apps/web/index.html apps/web/vite.config.ts packages/client/src packages/events/src -newer "$web_dist/index.html" -print -quit)" ]; then
  echo "[start] building the web client (apps/web)" >&2
  (cd apps/web && node_modules/.bin/vite build --logLevel warn)
fi

declare -A PORTS=([command-api]="${COMMAND_API_PORT:-3000}" [ws-gateway]="${WS_GATEWAY_PORT:-3001}" [projector]="${PROJECTOR_PORT:-3002}" [notifier]="${NOTIFIER_PORT:-3003}")
pids=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

for svc in projector notifier command-api ws-gateway; do
  [ -f "services/$svc/src/main.ts" ] || continue
  web_env=()
  if [ "$svc" = command-api ]; then
    # {host}: the page connects to the host name it was loaded from.
    gateway_url="ws://{host}:${PORTS[ws-gateway]}/v1/ws"
    web_env=(WEB_ROOT="${WEB_ROOT:-$PWD/$web_dist}" WEB_GATEWAY_URL="${WEB_GATEWAY_URL:-$gateway_url}")
  fi
  env "${web_env[@]}" PORT="${PORTS[$svc]}" node --import tsx "services/$svc/src/main.ts" &
  pids+=($!)
  echo "[start] $svc pid $! port ${PORTS[$svc]}" >&2
done

# Health-check every service before declaring the system up.
for svc in projector notifier command-api ws-gateway; do
  [ -f "services/$svc/src/main.ts" ] || continue
  url="http://127.0.0.1:${PORTS[$svc]}/readyz"
  for i in $(seq 1 150); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then echo "[start] $svc ready ($url)" >&2; break; fi
    if [ "$i" = 150 ]; then echo "[start] $svc not ready after 30 s ($url)" >&2; exit 1; fi
    sleep 0.2
  done
done
echo "[start] system up: HTTP http://127.0.0.1:${PORTS[command-api]} (docs at /docs), WebSocket ws://127.0.0.1:${PORTS[ws-gateway]}/v1/ws — Ctrl-C stops" >&2
echo "[start] web client: http://127.0.0.1:${PORTS[command-api]}/ — open it in two tabs and sign in as two user ids" >&2
# Exit (and stop the rest) as soon as any service dies: a half-running system is not "up".
wait -n "${pids[@]}"
echo "[start] a service exited; stopping the others" >&2
exit 1
