#!/usr/bin/env bash
# Prepare this machine for moov.olt; safe to run again.
#
# Installs uv if missing, syncs the virtual environment from uv.lock, and makes
# sure PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) answer:
# started if installed, installed from Debian's packages if not. Needs root or
# sudo for the services. Set MOOVOLT_DATABASE_URL / MOOVOLT_AMQP_URL to use
# servers elsewhere; then only the venv is prepared.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
fi

DATABASE_URL="${MOOVOLT_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/moovolt}"
AMQP_URL="${MOOVOLT_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
APT_UPDATED=""

# Answer 0 when something accepts TCP connections on host:port.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_port() {
  local host=$1 port=$2 what=$3 seconds=${4:-60}
  for _ in $(seq "$seconds"); do
    port_open "$host" "$port" && return 0
    sleep 1
  done
  die "$what does not answer on $host:$port after ${seconds}s"
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: install $* yourself"
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing $* from Debian's packages"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

is_local() {
  case "$1" in
    *@127.0.0.1:*|*@127.0.0.1/*|*@localhost:*|*@localhost/*|*//127.0.0.1*|*//localhost*) return 0 ;;
    *) return 1 ;;
  esac
}

# -- uv and the virtual environment ------------------------------------------

ensure_venv() {
  if ! command -v uv >/dev/null 2>&1; then
    log "installing uv with pip"
    python3 -m pip install --quiet uv 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages uv \
      || die "could not install uv; see https://docs.astral.sh/uv/"
    hash -r
  fi
  command -v uv >/dev/null 2>&1 || export PATH="$HOME/.local/bin:$PATH"
  log "syncing .venv from uv.lock"
  uv sync --frozen --quiet
}

# -- PostgreSQL ----------------------------------------------------------------

start_postgres() {
  local version
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /etc/postgresql); do
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
  fi
  port_open 127.0.0.1 5432 || $SUDO service postgresql start >/dev/null 2>&1 || true
}

# A fresh Debian cluster asks for a password over TCP; let the local
# `postgres` role in without one, as the default MOOVOLT_DATABASE_URL expects.
trust_local_postgres() {
  local hba
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    [ -f "$hba" ] || continue
    if ! $SUDO grep -q '^# moovolt: local trust' "$hba"; then
      log "allowing the postgres role from 127.0.0.1 without password ($hba)"
      $SUDO sed -i '1i # moovolt: local trust\nhost all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    fi
  done
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main reload \
    || $SUDO service postgresql reload || true
}

postgres_login_ok() {
  .venv/bin/python - "$DATABASE_URL" <<'PY'
import asyncio, sys
import asyncpg
from sqlalchemy.engine import make_url

url = make_url(sys.argv[1])

async def main() -> None:
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username,
        password=url.password, database="postgres", timeout=10,
    )
    await conn.close()

try:
    asyncio.run(main())
except Exception as exc:  # any failure means "cannot log in"
    print(f"[setup] cannot log in to PostgreSQL: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

ensure_postgres() {
  if ! is_local "$DATABASE_URL"; then
    log "PostgreSQL is remote ($DATABASE_URL): not managed here"
    return
  fi
  local installed_now=""
  if ! port_open 127.0.0.1 5432; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      apt_install postgresql
      installed_now=1
    fi
    log "starting PostgreSQL"
    start_postgres
  fi
  wait_port 127.0.0.1 5432 PostgreSQL
  if ! postgres_login_ok; then
    if [ -n "$installed_now" ]; then
      trust_local_postgres
      sleep 1
      postgres_login_ok || die "PostgreSQL still refuses the login"
    else
      die "set MOOVOLT_DATABASE_URL to a role that may create databases, e.g. postgresql+asyncpg://user:password@127.0.0.1:5432/moovolt"
    fi
  fi
  log "PostgreSQL answers"
}

# -- RabbitMQ ------------------------------------------------------------------

# Answer 0 when the broker completes an AMQP handshake: an open port is not
# enough, a broker stuck while recovering its queues accepts TCP and no more.
amqp_ok() {
  timeout 30 .venv/bin/python - "$AMQP_URL" <<'PY' >/dev/null 2>&1
import asyncio, sys
import aio_pika

async def probe() -> None:
    connection = await asyncio.wait_for(aio_pika.connect(sys.argv[1]), 20)
    await connection.close()

asyncio.run(probe())
PY
}

wait_amqp() {
  for _ in $(seq "${1:-120}"); do
    amqp_ok && return 0
    sleep 1
  done
  return 1
}

start_rabbitmq() {
  $SUDO rabbitmq-server -detached >/dev/null 2>&1 \
    || $SUDO service rabbitmq-server start >/dev/null 2>&1 || true
}

ensure_rabbitmq() {
  if ! is_local "$AMQP_URL"; then
    log "RabbitMQ is remote: not managed here"
    return
  fi
  if port_open 127.0.0.1 5672; then
    if wait_amqp 60; then
      log "RabbitMQ answers"
      return
    fi
    log "RabbitMQ accepts connections but does not speak AMQP: restarting it"
    timeout 60 $SUDO rabbitmqctl stop >/dev/null 2>&1 \
      || $SUDO pkill -9 -f 'beam.smp.*rabbit' || true
    sleep 2
  else
    command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
    log "starting RabbitMQ"
  fi
  start_rabbitmq
  wait_port 127.0.0.1 5672 RabbitMQ 120
  wait_amqp 180 || die "RabbitMQ does not complete an AMQP handshake"
  log "RabbitMQ answers"
}

ensure_venv
ensure_postgres
ensure_rabbitmq
log "ready"
