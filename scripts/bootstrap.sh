#!/usr/bin/env bash
# Set up everything FormRelay's development, demo and test suite need on a
# Debian 12 machine, from nothing, and do nothing on a machine that has it all.
#
#   scripts/bootstrap.sh              system packages, MariaDB, Redis, .venv
#   scripts/bootstrap.sh --venv-only  only what .venv needs (no services)
#
# Environment:
#   FORMRELAY_WITH_BROWSER=1   also install chromium (browser tests; `make test` sets it)
#   FORMRELAY_WITH_APACHE=1    also install apache2 + libapache2-mod-php8.2 (bench/load.py only)
#   PYTHON                     interpreter for the venv (default: python3.11)
#   BOOTSTRAP_WAIT_SECONDS     how long to wait for a service to answer (default 60)
#   BOOTSTRAP_MARIADB_PORT     (default 3306)   these four exist so the start path can
#   BOOTSTRAP_MARIADB_DATADIR  (default: the server's own configuration) be tried on a
#   BOOTSTRAP_MARIADB_RUNDIR   (default /run/mysqld; socket and pid file live there)
#   BOOTSTRAP_REDIS_PORT       (default 6379)   scratch instance without touching the real one
#
# Safe to run any number of times. It never creates, changes or drops a
# database: it only makes sure the servers are up. It prints no secrets.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started_at=$(date +%s%N)

log() { printf 'bootstrap: %s\n' "$*"; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

venv_only=0
for arg in "$@"; do
  case "$arg" in
    --venv-only) venv_only=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

is_root() { [ "$(id -u)" -eq 0 ]; }
wait_seconds=${BOOTSTRAP_WAIT_SECONDS:-60}

# ---------------------------------------------------------------- packages
venv_pkgs=(python3-venv libmagic1)
service_pkgs=(php8.2-cli php8.2-mysql php8.2-curl php8.2-mbstring php8.2-xml wordpress
              libmagic1 mariadb-server mariadb-client redis-server python3-venv)
# `make test` also wants Chromium (the dashboard's browser tests) and Debian's
# docker-compose 1.29 (tests/test_compose.py validates docker-compose.yml with it).
browser_pkgs=(chromium docker-compose)
# Without their recommends: docker-compose's is the Docker engine, not needed to validate.
lean_pkgs=(docker-compose)

if [ "$venv_only" -eq 1 ]; then
  wanted=("${venv_pkgs[@]}")
else
  wanted=("${service_pkgs[@]}")
fi
if [ "${FORMRELAY_WITH_BROWSER:-0}" = 1 ]; then
  wanted+=("${browser_pkgs[@]}")
fi
# bench/load.py serves WordPress the way production does; nothing else needs Apache.
if [ "${FORMRELAY_WITH_APACHE:-0}" = 1 ]; then
  wanted+=(apache2 libapache2-mod-php8.2)
fi
# tests/test_systemd.py checks deploy/systemd/ with systemd-analyze (Debian's systemd
# package); installed only when the command is missing, without recommends.
if [ "$venv_only" -eq 0 ] && ! command -v systemd-analyze >/dev/null 2>&1; then
  wanted+=(systemd)
  lean_pkgs+=(systemd)
fi

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'; }

missing=()
for pkg in "${wanted[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! is_root; then
    die "missing system packages; as root run: apt-get install -y ${missing[*]}"
  fi
  log "installing system packages: ${missing[*]}"
  apt-get update -q
  lean=() full=()
  for pkg in "${missing[@]}"; do
    case " ${lean_pkgs[*]} " in *" $pkg "*) lean+=("$pkg") ;; *) full+=("$pkg") ;; esac
  done
  [ ${#full[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${full[@]}"
  [ ${#lean[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${lean[@]}"
  for pkg in "${missing[@]}"; do
    installed "$pkg" || die "apt-get did not install $pkg"
  done
else
  log "system packages present (${#wanted[@]} checked)"
fi

# ---------------------------------------------------------------- helpers
tcp_open() {  # host port -> 0 if something accepts a connection
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

wait_for() {  # check-function...: poll it until it succeeds or the deadline passes
  local deadline=$(( $(date +%s) + wait_seconds ))
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- MariaDB
db_port=${BOOTSTRAP_MARIADB_PORT:-3306}
db_rundir=${BOOTSTRAP_MARIADB_RUNDIR:-/run/mysqld}
db_datadir=${BOOTSTRAP_MARIADB_DATADIR:-}
db_pidfile=$db_rundir/mysqld.pid
db_output=/var/log/mysql/bootstrap-$db_port.log

mysql_greeting() {
  # The server's first packet: a v10 handshake (0x0a) or an error such as "Host
  # '127.0.0.1' is not allowed to connect" (0xff). Either way MariaDB is serving.
  local hex
  hex=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$db_port && head -c 5 <&3" 2>/dev/null \
        | od -An -tx1 | tr -d ' \n') || return 1
  [ "${hex:8:2}" = 0a ] || [ "${hex:8:2}" = ff ]
}

mariadb_up() {
  # ping exits 0 whenever a server answers, even with "Access denied"; not when
  # the account's host is refused (a fresh root@localhost), hence the greeting.
  mariadb-admin --protocol=tcp -h127.0.0.1 -P"$db_port" -uroot --connect-timeout=2 \
    ping >/dev/null 2>&1 || mysql_greeting
}

mariadb_start() {
  is_root || die "MariaDB is installed but not running on 127.0.0.1:$db_port; as root run: service mariadb start"
  local args=(--user=mysql --port="$db_port" --bind-address=127.0.0.1)
  if [ -n "${BOOTSTRAP_MARIADB_RUNDIR:-}" ]; then  # a scratch instance keeps to its own dir
    args+=(--socket="$db_rundir/mysqld.sock" --pid-file="$db_pidfile"
           --log-error="$db_rundir/error.log")
  fi
  install -d -o mysql -g mysql -m 0755 "$db_rundir" /var/log/mysql
  local datadir=$db_datadir
  if [ -n "$datadir" ]; then
    args+=(--datadir="$datadir")
  else
    datadir=$(my_print_defaults --mysqld 2>/dev/null | sed -n 's/^--datadir=//p' | tail -n 1)
    datadir=${datadir:-/var/lib/mysql}
  fi
  if [ ! -d "$datadir/mysql" ]; then  # no system tables yet (an interrupted install)
    log "initialising an empty MariaDB data directory in $datadir"
    install -d -o mysql -g mysql -m 0750 "$datadir"
    mariadb-install-db --user=mysql --datadir="$datadir" >/dev/null
  fi
  log "starting mariadb on 127.0.0.1:$db_port"
  if ! start-stop-daemon --start --oknodo --background --output "$db_output" \
        --pidfile "$db_pidfile" --exec /usr/sbin/mariadbd -- "${args[@]}"; then
    log "start-stop-daemon could not start mariadbd; trying: service mariadb start"
    service mariadb start || true
  fi
  if ! wait_for mariadb_up; then
    local f
    for f in "$db_rundir/error.log" /var/log/mysql/error.log "$db_output"; do
      if [ -s "$f" ]; then echo "--- last lines of $f" >&2; tail -n 8 "$f" >&2; break; fi
    done
    die "mariadb did not answer on 127.0.0.1:$db_port within ${wait_seconds}s"
  fi
}

# ---------------------------------------------------------------- Redis
redis_port=${BOOTSTRAP_REDIS_PORT:-6379}

redis_up() {
  [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]
}

redis_start() {
  local cmd=(redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port"
             --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log)
  is_root || die "Redis is installed but not running on 127.0.0.1:$redis_port; as root run: ${cmd[*]}"
  if [ "$redis_port" != 6379 ]; then  # a scratch instance keeps its own pid file
    cmd+=(--pidfile "/run/redis-bootstrap-$redis_port.pid")
  fi
  install -d /var/lib/redis /var/log/redis
  log "starting redis on 127.0.0.1:$redis_port"
  "${cmd[@]}" >/dev/null
  if ! wait_for redis_up; then
    [ -s /var/log/redis/ci.log ] && tail -n 15 /var/log/redis/ci.log >&2
    die "redis did not answer PING on 127.0.0.1:$redis_port within ${wait_seconds}s"
  fi
}

if [ "$venv_only" -eq 0 ]; then
  if mariadb_up; then
    log "mariadb running on 127.0.0.1:$db_port"
  elif tcp_open 127.0.0.1 "$db_port"; then
    die "127.0.0.1:$db_port accepts connections but does not answer as MariaDB"
  else
    mariadb_start
    log "mariadb running on 127.0.0.1:$db_port (started)"
  fi

  # The test suite logs in over TCP (tests/conftest.py: FORMRELAY_TEST_DB_*,
  # default root with an empty password). A fresh Debian's root uses the unix
  # socket only; say so rather than let every database test fail.
  test_db_user=${FORMRELAY_TEST_DB_USER:-root}
  if [ "${FORMRELAY_TEST_DB_HOST:-127.0.0.1:$db_port}" = "127.0.0.1:$db_port" ] &&
     ! MYSQL_PWD=${FORMRELAY_TEST_DB_PASSWORD:-} mariadb --protocol=tcp -h127.0.0.1 \
       -P"$db_port" -u"$test_db_user" --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1; then
    log "warning: $test_db_user cannot log in to 127.0.0.1:$db_port with FORMRELAY_TEST_DB_PASSWORD;" \
        "database tests need FORMRELAY_TEST_DB_USER/_PASSWORD of an account that may create databases"
  fi

  if redis_up; then
    log "redis running on 127.0.0.1:$redis_port"
  elif tcp_open 127.0.0.1 "$redis_port"; then
    die "127.0.0.1:$redis_port accepts connections but does not answer PING (a password?)"
  else
    redis_start
    log "redis running on 127.0.0.1:$redis_port (started)"
  fi
fi

# ---------------------------------------------------------------- venv
python=${PYTHON:-python3.11}
if ! command -v "$python" >/dev/null 2>&1; then
  command -v python3 >/dev/null 2>&1 || die "no python3.11 or python3 on PATH"
  python=python3
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$python is older than 3.11; set PYTHON to a Python 3.11 interpreter"

venv=.venv
stamp=$venv/.formrelay-bootstrap-stamp
if [ ! -e "$venv" ]; then
  log "creating $venv with $python"
  "$python" -m venv "$venv"
elif ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
  # Rebuild only a venv of our own that is really ours to rebuild.
  [ -O "$venv" ] && [ -f "$venv/pyvenv.cfg" ] \
    || die "$venv exists but its python does not run for $(id -un); fix or remove $venv"
  log "$venv is broken or older than Python 3.11; recreating it with $python"
  "$python" -m venv --clear "$venv"
fi

# Dependencies come from the lock (pinned versions, every file's hash checked: `make lock`
# refreshes it), then the project itself without resolving anything.
lock=requirements-dev.lock
[ -f "$lock" ] || die "$lock is missing (make lock writes it from pyproject.toml)"
want_stamp="$(cat pyproject.toml "$lock" | sha256sum | cut -d' ' -f1) $("$venv/bin/python" -V 2>&1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -x "$venv/bin/formrelay" ]; then
  log "venv up to date ($venv)"
else
  log "installing $lock (--require-hashes) and formrelay into $venv (pyproject.toml or $lock changed, or first run)"
  "$venv/bin/python" -m pip install --quiet --require-hashes --no-deps -r "$lock"
  "$venv/bin/python" -m pip install --quiet --no-deps -e .
  "$venv/bin/python" -m pip check >/dev/null \
    || die "the installed packages do not satisfy pyproject.toml: run make lock"
  printf '%s\n' "$want_stamp" > "$stamp"
  log "venv ready ($venv)"
fi

elapsed_ms=$(( ($(date +%s%N) - started_at) / 1000000 ))
log "done in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s"
