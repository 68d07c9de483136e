# Sourced first (before any cd) by the scripts that run the gateway: start, test, bench. Unless the
# script already runs under infra/with-node.sh, re-runs it there with the machine's Node version, which
# is the machine's own node where that can load uWebSockets.js (glibc >= 2.38) and otherwise the same
# version from the npm registry on Debian 13's glibc (see with-node.sh).
if [ -z "${CHAT_NODE_RUNTIME:-}" ]; then
  exec bash "$(dirname "${BASH_SOURCE[0]}")/with-node.sh" current bash "$0" "$@"
fi
