#!/usr/bin/env bash
# Makes the local infrastructure ready without Docker, idempotently and quickly when all is ready:
#   - PostgreSQL on 127.0.0.1:5432 (installed from the OS packages when missing and running as root),
#   - nats-server with JetStream on 127.0.0.1:4222 (same),
#   - the project's database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/chat).
# Services named by DATABASE_URL / NATS_URL elsewhere than loopback are left alone.
set -euo pipefail

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chat}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
log() { echo "[infra] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_updated=0
apt_install() {
  is_root || { log "need root to install $* (or install it yourself)"; return 1; }
  if [ "$apt_updated" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------------
pg_host=$(node -e 'const u=new URL(process.argv[1]);console.log(u.hostname)' "$DATABASE_URL")
pg_port=$(node -e 'const u=new URL(process.argv[1]);console.log(u.port||5432)' "$DATABASE_URL")
pg_db=$(node -e 'const u=new URL(process.argv[1]);console.log(u.pathname.slice(1)||"chat")' "$DATABASE_URL")
pg_admin_url=$(node -e 'const u=new URL(process.argv[1]);u.pathname="/postgres";console.log(u.toString())' "$DATABASE_URL")
if [[ "$pg_host" == 127.* || "$pg_host" == localhost ]]; then
  if ! port_open "$pg_host" "$pg_port"; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      log "installing PostgreSQL from the OS packages"
      apt_install postgresql
      version=$(ls /etc/postgresql | sort -V | tail -1)
      # Local development: trust loopback connections, as the test and start scripts expect.
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    version=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 50); do port_open "$pg_host" "$pg_port" && break; sleep 0.2; done
  fi
  port_open "$pg_host" "$pg_port" || { log "PostgreSQL is not reachable on $pg_host:$pg_port"; exit 1; }
fi
# The services and the parallel test files each hold small pools (plus LISTEN connections); Debian's
# default of 100 connections runs out when the whole suite and a running system share the cluster.
if [[ "$pg_host" == 127.* || "$pg_host" == localhost ]] && is_root && ls /etc/postgresql/*/main >/dev/null 2>&1; then
  max_conn=$(psql "$pg_admin_url" -tAc "SHOW max_connections" 2>/dev/null || echo 0)
  if [ "${max_conn:-0}" -lt 300 ]; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    log "raising PostgreSQL max_connections from $max_conn to 300 (restarts the local cluster once)"
    psql "$pg_admin_url" -qc "ALTER SYSTEM SET max_connections = 300"
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart
    for _ in $(seq 1 50); do port_open "$pg_host" "$pg_port" && break; sleep 0.2; done
  fi
fi
exists=$(psql "$pg_admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$pg_db'" 2>/dev/null || true)
if [ "$exists" != 1 ]; then
  log "creating database $pg_db"
  psql "$pg_admin_url" -qc "CREATE DATABASE \"$pg_db\"" 2>/dev/null || true
fi

# --- NATS with JetStream ----------------------------------------------------------------------
nats_host=$(node -e 'const u=new URL(process.argv[1].split(",")[0]);console.log(u.hostname)' "$NATS_URL")
nats_port=$(node -e 'const u=new URL(process.argv[1].split(",")[0]);console.log(u.port||4222)' "$NATS_URL")
if [[ "$nats_host" == 127.* || "$nats_host" == localhost ]] && ! port_open "$nats_host" "$nats_port"; then
  command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || { log "installing nats-server from the OS packages"; apt_install nats-server; }
  bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  store_dir=/var/lib/nats-server
  is_root || store_dir="${TMPDIR:-/tmp}/nats-server-$(id -u)"
  mkdir -p "$store_dir"
  log "starting nats-server (JetStream) on $nats_host:$nats_port"
  if command -v start-stop-daemon >/dev/null && is_root; then
    start-stop-daemon --start --oknodo --background --exec "$bin" -- -a "$nats_host" -p "$nats_port" -js -sd "$store_dir" -l /var/log/nats-server.log
  else
    nohup "$bin" -a "$nats_host" -p "$nats_port" -js -sd "$store_dir" >"$store_dir/nats-server.log" 2>&1 &
  fi
  for _ in $(seq 1 50); do port_open "$nats_host" "$nats_port" && break; sleep 0.1; done
  port_open "$nats_host" "$nats_port" || { log "nats-server did not come up on $nats_host:$nats_port"; exit 1; }
fi
log "PostgreSQL ($pg_host:$pg_port/$pg_db) and NATS ($nats_host:$nats_port) are ready"
