#!/usr/bin/env bash
# Start/stop throwaway test servers on loopback, each under $SVC_ROOT with its own pid file.
#   bash .ci/services.sh start [postgres redis mariadb dynamodb moto mongodb]   (default: all six)
#   bash .ci/services.sh stop [names]   stops the servers named by the pid files under $SVC_ROOT
#                                       and removes their data (a server started elsewhere, with
#                                       no pid file there, is not touched)
#   bash .ci/services.sh status         one line per service: NAME PORT up|down
# Idempotent: a server already answering on its port is left alone (scripts/test then also
# leaves it running at the end: it stops only the services its own `start` launched).
# Every server binds to 127.0.0.1 only, on a non-default port (override with the *_PORT vars).
# `start` tries every named service and exits 1 if any failed (the others keep running).
# Needs root (apt-get, runuser). mongodb and moto need `secantusdb` / `moto[server]` in $VENV;
# they are pip-installed there if missing. Recipe and pitfalls: /work/shared/services.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SVC_ROOT="${SVC_ROOT:-/tmp/ci-services}"          # short: the pg socket path must stay < 107 bytes
VENV="${VENV:-$HERE/../.venv}"
PG_PORT="${PG_PORT:-54329}"; REDIS_PORT="${REDIS_PORT:-63799}"; MYSQL_PORT="${MYSQL_PORT:-33069}"
DYNAMO_PORT="${DYNAMO_PORT:-45679}"; MOTO_PORT="${MOTO_PORT:-45680}"; MONGO_PORT="${MONGO_PORT:-27099}"
ALL_SERVICES="postgres redis mariadb dynamodb moto mongodb"
for port in "$PG_PORT" "$REDIS_PORT" "$MYSQL_PORT" "$DYNAMO_PORT" "$MOTO_PORT" "$MONGO_PORT"; do
  case "$port" in ''|*[!0-9]*) echo "bad port: '$port'" >&2; exit 2;; esac
  [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || { echo "bad port: $port" >&2; exit 2; }
done
export DEBIAN_FRONTEND=noninteractive
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
APT=(apt-get -q -y -o DPkg::Lock::Timeout=300)      # other apt runs on the machine: wait for the lock

wait_for() { # [WAIT_PID=pid] wait_for SECONDS CMD... ; polls every 0.1 s; gives up early
             # when the server process WAIT_PID has already exited
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    if [ -n "${WAIT_PID:-}" ]; then gone "$WAIT_PID" && return 1; fi
    sleep 0.1
  done
}
gone() { case "$(ps -o stat= -p "$1" 2>/dev/null)" in ""|Z*) return 0;; esac; return 1; }  # exited or zombie
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { curl --noproxy '*' -fs -o /dev/null --max-time 2 "$1"; }
apt_ensure() { # apt_ensure BINARY PACKAGE ; apt-get update first (lists may be stale or empty)
  [ -x "$1" ] && return 0
  echo "$2: installing with apt-get"
  "${APT[@]}" update >/dev/null 2>&1 || true
  "${APT[@]}" install "$2" >"$SVC_ROOT/apt-$2.log" 2>&1 || { tail -20 "$SVC_ROOT/apt-$2.log"; return 1; }
}

start_postgres() {
  local d="$SVC_ROOT/pg" bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bin" ]; then apt_ensure /nonexistent postgresql; bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"; fi
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then echo "postgres: already up on $PG_PORT"; return 0; fi
  mkdir -p "$d"; chown postgres:postgres "$d"
  # initdb refuses to run as root -> run as the postgres user; trust auth, no fsync
  [ -f "$d/data/PG_VERSION" ] || runuser -u postgres -- "$bin/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$d/initdb.log" 2>&1 \
    || { cat "$d/initdb.log"; return 1; }
  runuser -u postgres -- "$bin/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 start -o \
    "-p $PG_PORT -k $d -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
    || { tail -20 "$d/server.log"; return 1; }
  wait_for 30 "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc "select 1 from pg_database where datname='test'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres test
  echo "postgres: up  postgresql://postgres@127.0.0.1:$PG_PORT/test  (socket dir $d)"
}
stop_postgres() {
  local d="$SVC_ROOT/pg" bin; bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -f "$d/data/postmaster.pid" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null 2>&1 && return 0
  # pg_ctl failed: the first line of postmaster.pid is the postmaster's pid
  head -1 "$d/data/postmaster.pid" >"$d/postmaster.pid.copy" 2>/dev/null && kill_pidfile "$d/postmaster.pid.copy" postgres
}

start_redis() {
  local d="$SVC_ROOT/redis"
  apt_ensure /usr/bin/redis-server redis-server   # postinst does not start it here (policy-rc.d exits 101)
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then echo "redis: already up on $REDIS_PORT"; return 0; fi
  mkdir -p "$d"
  kill_pidfile "$d/redis.pid" redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$d" --pidfile "$d/redis.pid" --logfile "$d/redis.log"
  wait_for 10 sh -c "redis-cli -h 127.0.0.1 -p $REDIS_PORT ping | grep -q PONG" || { tail -20 "$d/redis.log"; return 1; }
  echo "redis: up  redis://127.0.0.1:$REDIS_PORT/0"
}

start_mariadb() {
  local d="$SVC_ROOT/mariadb"
  apt_ensure /usr/sbin/mariadbd mariadb-server   # postinst does not start it here (policy-rc.d exits 101)
  if tcp_open "$MYSQL_PORT" && mariadb --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uroot -e "select 1" >/dev/null 2>&1; then echo "mariadb: already up on $MYSQL_PORT"; return 0; fi
  mkdir -p "$d"; chown mysql:mysql "$d"
  kill_pidfile "$d/mariadbd.pid" mariadbd
  [ -d "$d/data/mysql" ] || mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$d/install.log" 2>&1 || { tail -20 "$d/install.log"; return 1; }
  # --no-defaults: ignore /etc/mysql/*.cnf; --user=mysql: mariadbd refuses to run as root
  /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$d/data" \
    --socket="$d/mysqld.sock" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --pid-file="$d/mariadbd.pid" --log-error="$d/error.log" --skip-name-resolve --skip-log-bin \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --max-connections=200 </dev/null >/dev/null 2>&1 &
  # readiness: `mariadb-admin ping` exits 0 even on "Access denied", so run a query
  local pid=$!
  WAIT_PID=$pid wait_for 60 mariadb --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uroot -e "select 1" \
    || { tail -20 "$d/error.log"; echo "$pid" >"$d/mariadbd.pid"; kill_pidfile "$d/mariadbd.pid" mariadbd; return 1; }
  mariadb --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -uroot -e "CREATE DATABASE IF NOT EXISTS test"
  echo "mariadb: up  mysql://root@127.0.0.1:$MYSQL_PORT/test  (socket $d/mysqld.sock)"
}

start_dynamodb() { # dynalite: strict and small, but no transactions / TTL / PartiQL (see moto)
  local d="$SVC_ROOT/dynalite"
  mkdir -p "$d"
  # --prefix: without it npm walks up to the nearest package.json and installs there
  [ -x "$d/node_modules/.bin/dynalite" ] || npm install --prefix "$d" --no-audit --no-fund --no-save --loglevel=error dynalite@4.0.0 >"$d/npm.log" 2>&1 \
    || { tail -20 "$d/npm.log"; return 1; }
  if http_ok "http://127.0.0.1:$DYNAMO_PORT/"; then echo "dynamodb: already up on $DYNAMO_PORT"; return 0; fi
  kill_pidfile "$d/dynalite.pid" dynalite   # a stale one from an earlier run that no longer answers
  "$d/node_modules/.bin/dynalite" --host 127.0.0.1 --port "$DYNAMO_PORT" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 </dev/null >"$d/dynalite.log" 2>&1 &
  echo $! >"$d/dynalite.pid"
  WAIT_PID=$! wait_for 15 http_ok "http://127.0.0.1:$DYNAMO_PORT/" || { tail -20 "$d/dynalite.log"; kill_pidfile "$d/dynalite.pid" dynalite; return 1; }
  echo "dynamodb: up  http://127.0.0.1:$DYNAMO_PORT  (dynalite; region us-east-1, any key id/secret)"
}

start_moto() { # moto_server: a second DynamoDB endpoint that has TransactWriteItems / TTL
  local d="$SVC_ROOT/moto"
  [ -x "$VENV/bin/moto_server" ] || "$VENV/bin/pip" install -q 'moto[server]>=5'
  if http_ok "http://127.0.0.1:$MOTO_PORT/moto-api/"; then echo "moto: already up on $MOTO_PORT"; return 0; fi
  mkdir -p "$d"
  kill_pidfile "$d/moto.pid" moto_server
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$d/moto.log" 2>&1 &
  echo $! >"$d/moto.pid"
  WAIT_PID=$! wait_for 30 http_ok "http://127.0.0.1:$MOTO_PORT/moto-api/" || { tail -20 "$d/moto.log"; kill_pidfile "$d/moto.pid" moto_server; return 1; }
  echo "moto: up  http://127.0.0.1:$MOTO_PORT  (moto_server; DynamoDB with transactions)"
}

start_mongodb() { # SecantusDB: a MongoDB wire-protocol emulator (no real mongod is obtainable here)
  local d="$SVC_ROOT/secantus"
  [ -x "$VENV/bin/secantusd-py" ] || "$VENV/bin/pip" install -q secantusdb
  if tcp_open "$MONGO_PORT"; then echo "mongodb: already up on $MONGO_PORT"; return 0; fi
  mkdir -p "$d"
  kill_pidfile "$d/server.pid" secantusd
  "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$MONGO_PORT" --storage-path "$d/data" \
    --log-level WARNING </dev/null >"$d/server.log" 2>&1 &
  echo $! >"$d/server.pid"
  WAIT_PID=$! wait_for 30 tcp_open "$MONGO_PORT" || { tail -20 "$d/server.log"; kill_pidfile "$d/server.pid" secantusd; return 1; }
  echo "mongodb: up  mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true  (SecantusDB)"
}

kill_pidfile() { # kill_pidfile FILE [NAME] ; kill the process in FILE (if its command line
                 # mentions NAME, against a reused pid) and wait until it has exited
  [ -f "$1" ] || return 0
  local pid; pid="$(tr -dc 0-9 <"$1")"
  if [ -n "$pid" ] && { [ -z "${2:-}" ] || { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q -- "$2"; }; then
    if kill "$pid" 2>/dev/null; then
      # wait until gone or a zombie (PID 1 here reaps orphans only every ~1-2 s)
      for _ in $(seq 1 150); do gone "$pid" && break; sleep 0.1; done
      gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$1"
}

status() {
  local bin; bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  local s
  s=down; [ -n "$bin" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && s=up; echo "postgres  $PG_PORT  $s"
  s=down; tcp_open "$REDIS_PORT" && s=up; echo "redis     $REDIS_PORT  $s"
  s=down; tcp_open "$MYSQL_PORT" && s=up; echo "mariadb   $MYSQL_PORT  $s"
  s=down; http_ok "http://127.0.0.1:$DYNAMO_PORT/" && s=up; echo "dynamodb  $DYNAMO_PORT  $s"
  s=down; http_ok "http://127.0.0.1:$MOTO_PORT/moto-api/" && s=up; echo "moto      $MOTO_PORT  $s"
  s=down; tcp_open "$MONGO_PORT" && s=up; echo "mongodb   $MONGO_PORT  $s"
}

case "${1:-start}" in
  start) shift || true
         mkdir -p "$SVC_ROOT"; failed=""
         # shellcheck disable=SC2068  # word splitting of the default list is intended
         for s in ${@:-$ALL_SERVICES}; do
           case " $ALL_SERVICES " in *" $s "*) ;; *) echo "unknown service: $s" >&2; exit 2;; esac
           # a separate bash per service: `set -e` still applies inside it, and one failure
           # does not keep the others from starting
           "$BASH" "${BASH_SOURCE[0]}" _start "$s" || { echo "$s: FAILED to start (see above)" >&2; failed="$failed $s"; }
         done
         [ -z "$failed" ] || { echo "services that did not start:$failed" >&2; exit 1; } ;;
  _start) "start_$2" ;;
  stop)  shift || true
         # shellcheck disable=SC2068  # word splitting of the default list is intended
         for s in ${@:-$ALL_SERVICES}; do
           case "$s" in
             postgres) stop_postgres; rm -rf "$SVC_ROOT/pg" ;;
             redis)    kill_pidfile "$SVC_ROOT/redis/redis.pid" redis-server; rm -rf "$SVC_ROOT/redis" ;;
             mariadb)  kill_pidfile "$SVC_ROOT/mariadb/mariadbd.pid" mariadbd; rm -rf "$SVC_ROOT/mariadb" ;;
             dynamodb) kill_pidfile "$SVC_ROOT/dynalite/dynalite.pid" dynalite ;;  # keeps dynalite's node_modules
             moto)     kill_pidfile "$SVC_ROOT/moto/moto.pid" moto_server; rm -rf "$SVC_ROOT/moto" ;;
             mongodb)  kill_pidfile "$SVC_ROOT/secantus/server.pid" secantusd; rm -rf "$SVC_ROOT/secantus" ;;
             *) echo "unknown service: $s" >&2; exit 2 ;;
           esac
         done ;;
  status) status ;;
  *) echo "usage: $0 start|stop [$ALL_SERVICES] | status" >&2; exit 2 ;;
esac
