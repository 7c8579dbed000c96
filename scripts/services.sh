#!/usr/bin/env bash
# scripts/services.sh — the local servers Taskpool's integration tests talk to.
#
#   bash scripts/services.sh up       install what is missing, start everything, wait until it answers
#   bash scripts/services.sh down     stop what `up` started
#   bash scripts/services.sh status   one line per server; exit 0 only if all of them answer
#   bash scripts/services.sh env      `export` lines for the tests (eval "$(bash scripts/services.sh env)")
#
# What this script owns (all bound to 127.0.0.1, never to another address; no Docker):
#   postgresql  127.0.0.1:5432   Debian's `postgresql`, cluster "<version> main" via pg_ctlcluster;
#                                role/password taskpool, databases taskpool, taskpool_test, ferretdb
#   nats        127.0.0.1:4222   Debian's `nats-server` (monitoring on 127.0.0.1:8222, JetStream on)
#   ferretdb    127.0.0.1:27017  FerretDB v1.24.2 built from the Go module proxy, PostgreSQL backend
#   operaton    127.0.0.1:8180   the Spring Boot app in test/engine/ (REST at /engine-rest, H2 in memory)
# plus the apt packages `chromium` and `docker-compose` (used by tests/CI, not servers).
#
# Everything built or written at run time lives outside the repo, under
#   ${TASKPOOL_CACHE:-$HOME/.cache/taskpool}/{bin,build,run,logs}
# (Maven keeps its default ~/.m2, Go its default module and build caches.)
# PostgreSQL's data stays where Debian keeps it (/var/lib/postgresql); this script only adds
# conf.d/taskpool.conf to the cluster's configuration.
#
# Environment:
#   TASKPOOL_CACHE              cache/runtime directory (default ~/.cache/taskpool)
#   TASKPOOL_SKIP_ENGINE=1      leave the Operaton engine out (quick unit-only runs)
#   TASKPOOL_ENGINE_TIMEOUT     seconds to wait for the engine to answer (default 180)
#   TASKPOOL_ENGINE_JAVA_OPTS   JVM options for the engine (default: -Xmx768m)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${TASKPOOL_CACHE:-$HOME/.cache/taskpool}"
BIN_DIR="$CACHE_DIR/bin"
BUILD_DIR="$CACHE_DIR/build"
RUN_DIR="$CACHE_DIR/run"
LOG_DIR="$CACHE_DIR/logs"

HOST=127.0.0.1
PG_PORT=5432
NATS_PORT=4222
NATS_HTTP_PORT=8222
MONGO_PORT=27017
ENGINE_PORT=8180

PG_USER=taskpool
PG_PASSWORD=taskpool
PG_DATABASES=(taskpool taskpool_test ferretdb)
PG_CLUSTER=main

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2
FERRETDB_BIN="$BIN_DIR/ferretdb-$FERRETDB_VERSION"

ENGINE_SRC="$REPO_DIR/test/engine"
ENGINE_JAR="$BIN_DIR/operaton-engine.jar"
ENGINE_TIMEOUT="${TASKPOOL_ENGINE_TIMEOUT:-180}"
ENGINE_JAVA_OPTS="${TASKPOOL_ENGINE_JAVA_OPTS:--Xmx768m}"
ENGINE_URL="http://$HOST:$ENGINE_PORT/engine-rest"

# Go may live outside PATH in non-login shells (CI).
if [[ -d /usr/local/go/bin && ":$PATH:" != *":/usr/local/go/bin:"* ]]; then
  PATH="$PATH:/usr/local/go/bin"
fi

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

log() { echo "[services] $*" >&2; }

die() {
  echo "[services] ERROR: $*" >&2
  exit 1
}

# die, showing the end of a log file first
die_with_log() {
  local logfile=$1
  shift
  if [[ -f $logfile ]]; then
    echo "[services] ---- last lines of $logfile ----" >&2
    tail -n 25 "$logfile" >&2 || true
    echo "[services] ----" >&2
  fi
  die "$*"
}

engine_enabled() { [[ ${TASKPOOL_SKIP_ENGINE:-0} != 1 ]]; }

has_systemd() { [[ -d /run/systemd/system ]]; }

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install PKG...: install the packages that are missing (apt-get update once if needed)
apt_install() {
  local missing=() p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1; then
    apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 || true
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$LOG_DIR/apt.log" 2>&1 \
      || die_with_log "$LOG_DIR/apt.log" "apt-get install ${missing[*]} failed"
  fi
}

# pid_alive PIDFILE PATTERN: the pid in PIDFILE runs and its command line contains PATTERN
pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# launch PIDFILE LOGFILE CMD...: run CMD detached (own session, stdin from /dev/null),
# output to LOGFILE (the previous log is kept as LOGFILE.prev), its pid in PIDFILE
launch() {
  local pidfile=$1 logfile=$2
  shift 2
  [[ -f $logfile ]] && mv -f "$logfile" "$logfile.prev"
  rm -f "$pidfile"
  # the inner shell writes its own pid and then becomes the server (exec), so the pid is exact;
  # servers run from $RUN_DIR so that nothing they might write lands in the caller's directory
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the inner shell
  (cd "$RUN_DIR" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$logfile" 2>&1 </dev/null) &
  for _ in {1..50}; do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die_with_log "$logfile" "could not start $1"
}

# stop_pid NAME PIDFILE PATTERN: TERM the process (KILL after 30 s), remove the pid file
stop_pid() {
  local name=$1 pidfile=$2 pattern=$3 pid
  if ! pid_alive "$pidfile" "$pattern"; then
    rm -f "$pidfile"
    log "$name: not running"
    return 0
  fi
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in {1..300}; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still running after 30 s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}

# wait_for NAME ADDRESS TIMEOUT LOGFILE PIDFILE PATTERN CHECK...: poll CHECK until it succeeds;
# fail early if the process (PIDFILE, optional) dies, fail after TIMEOUT seconds
wait_for() {
  local name=$1 address=$2 timeout=$3 logfile=$4 pidfile=$5 pattern=$6
  shift 6
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if [[ -n $pidfile ]] && ! pid_alive "$pidfile" "$pattern"; then
      die_with_log "$logfile" "$name: the process exited while starting; read $logfile"
    fi
    if ((SECONDS >= deadline)); then
      die_with_log "$logfile" "$name: no answer on $address within ${timeout}s; read $logfile"
    fi
    sleep 1
  done
}

node_bin() {
  if [[ -x $REPO_DIR/node_modules/.bin/node ]]; then
    echo "$REPO_DIR/node_modules/.bin/node"
  else
    command -v node || true
  fi
}

sha256_of_dir_files() { # prints one checksum over the listed files (paths relative to $1)
  local dir=$1
  shift
  (cd "$dir" && find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

install_prereqs() {
  apt_install ca-certificates curl
}

install_extras() {
  # not servers: chromium for the browser tests, docker-compose for CI's compose-file check
  apt_install chromium docker-compose
}

# ---------------------------------------------------------------------------
# PostgreSQL (Debian cluster "<version> main", driven by pg_ctlcluster)
# ---------------------------------------------------------------------------

pg_version() { # the newest installed server, e.g. 15
  local d versions=()
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x $d ]] && versions+=("$(basename "$(dirname "$(dirname "$d")")")")
  done
  ((${#versions[@]})) && printf '%s\n' "${versions[@]}" | sort -V | tail -n 1
  return 0
}

pg_logfile() { echo "/var/log/postgresql/postgresql-$(pg_version)-$PG_CLUSTER.log"; }

pg_conf_file() { echo "/etc/postgresql/$(pg_version)/$PG_CLUSTER/conf.d/taskpool.conf"; }

pg_running() {
  local v
  v=$(pg_version)
  [[ -n $v ]] && pg_ctlcluster "$v" "$PG_CLUSTER" status >/dev/null 2>&1
}

# as the taskpool role, over TCP with its password
pg_psql_taskpool() {
  PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

# as the postgres superuser, over the Unix socket (peer auth); SQL on stdin
pg_psql_admin() {
  (cd / && runuser -u postgres -- psql -X -q -p "$PG_PORT" -v ON_ERROR_STOP=1 -d postgres)
}

install_postgresql() {
  if ! pkg_installed postgresql; then
    apt_install postgresql
    # on machines with systemd the package starts the cluster itself; we start it ourselves
  fi
  local v
  v=$(pg_version)
  [[ -n $v ]] || die "postgresql: no server found under /usr/lib/postgresql after installing"
  if [[ ! -d /etc/postgresql/$v/$PG_CLUSTER ]]; then
    log "postgresql: creating cluster $v $PG_CLUSTER"
    pg_createcluster "$v" "$PG_CLUSTER" --port "$PG_PORT" >>"$LOG_DIR/postgresql-setup.log" 2>&1 \
      || die_with_log "$LOG_DIR/postgresql-setup.log" "postgresql: pg_createcluster failed"
  fi
}

# writes conf.d/taskpool.conf; returns 0 if it changed
configure_postgresql() {
  local conf wanted
  conf=$(pg_conf_file)
  wanted="# Written by Taskpool's scripts/services.sh: loopback only, fixed port.
listen_addresses = '$HOST'
port = $PG_PORT"
  if [[ -f $conf && "$(<"$conf")" == "$wanted" ]]; then
    return 1
  fi
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$wanted" >"$conf"
  chown postgres:postgres "$conf" 2>/dev/null || true
  return 0
}

postgresql_provisioned() {
  local ok
  ok=$(pg_psql_taskpool -d postgres -tA -c "
    select (select count(*) from pg_database
             where datname in ('taskpool', 'taskpool_test', 'ferretdb')) = 3
       and (select count(*) from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
             where d.datname in ('taskpool', 'taskpool_test')
               and 'idle_in_transaction_session_timeout=60s' = any (s.setconfig)) = 2" 2>/dev/null) || return 1
  [[ $ok == t ]]
}

provision_postgresql() {
  postgresql_provisioned && return 0
  log "postgresql: creating role $PG_USER and databases ${PG_DATABASES[*]}"
  pg_psql_admin >>"$LOG_DIR/postgresql-setup.log" 2>&1 <<SQL || die_with_log "$LOG_DIR/postgresql-setup.log" "postgresql: provisioning failed"
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SELECT format('CREATE DATABASE %I OWNER $PG_USER', d)
  FROM unnest(array['taskpool', 'taskpool_test', 'ferretdb']) AS d
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d)
\gexec
-- the event store reads behind an xmin barrier: long open transactions would stall it
ALTER DATABASE taskpool SET idle_in_transaction_session_timeout = '60s';
ALTER DATABASE taskpool_test SET idle_in_transaction_session_timeout = '60s';
SQL
}

check_postgresql() {
  pg_isready -q -h "$HOST" -p "$PG_PORT" -t 3
}

# the stronger check used by `status`: log in as taskpool and run a query
check_postgresql_login() {
  [[ "$(pg_psql_taskpool -d taskpool -tA -c 'select 1' 2>/dev/null)" == 1 ]]
}

start_postgresql() {
  local v changed=0
  v=$(pg_version)
  configure_postgresql && changed=1
  if pg_running; then
    if ((changed)); then
      log "postgresql: configuration changed, restarting"
      pg_ctlcluster "$v" "$PG_CLUSTER" restart >>"$LOG_DIR/postgresql-setup.log" 2>&1 \
        || die_with_log "$(pg_logfile)" "postgresql: restart failed; read $(pg_logfile)"
    elif check_postgresql; then
      provision_postgresql
      log "postgresql: already running on $HOST:$PG_PORT"
      return 0
    fi
  else
    pg_ctlcluster "$v" "$PG_CLUSTER" start >>"$LOG_DIR/postgresql-setup.log" 2>&1 \
      || die_with_log "$(pg_logfile)" "postgresql: pg_ctlcluster $v $PG_CLUSTER start failed; read $(pg_logfile)"
  fi
  wait_for postgresql "$HOST:$PG_PORT" 60 "$(pg_logfile)" "" "" check_postgresql
  provision_postgresql
  log "postgresql: started on $HOST:$PG_PORT (cluster $v $PG_CLUSTER)"
}

stop_postgresql() {
  local v
  v=$(pg_version)
  if [[ -z $v ]] || ! pg_running; then
    log "postgresql: not running"
    return 0
  fi
  pg_ctlcluster "$v" "$PG_CLUSTER" stop >>"$LOG_DIR/postgresql-setup.log" 2>&1 \
    || die_with_log "$(pg_logfile)" "postgresql: pg_ctlcluster $v $PG_CLUSTER stop failed"
  log "postgresql: stopped"
}

status_postgresql() {
  if check_postgresql_login; then
    report postgresql "$HOST:$PG_PORT" up "select 1 as $PG_USER ok"
  elif check_postgresql; then
    report postgresql "$HOST:$PG_PORT" down "accepts connections, but login as $PG_USER failed"
    return 1
  else
    report postgresql "$HOST:$PG_PORT" down "no answer; log $(pg_logfile)"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# NATS (Debian's nats-server, run by us in the background)
# ---------------------------------------------------------------------------

NATS_PID="$RUN_DIR/nats.pid"
NATS_LOG="$LOG_DIR/nats.log"
NATS_CONF="$RUN_DIR/nats.conf"

install_nats() {
  if ! pkg_installed nats-server; then
    apt_install nats-server
    # the package's own service would take port 4222; this script runs its own instance
    if has_systemd && systemctl is-enabled nats-server >/dev/null 2>&1; then
      log "nats: disabling the Debian nats-server.service (this script runs its own instance)"
      systemctl disable --now nats-server >/dev/null 2>&1 || true
    fi
  fi
}

check_nats() {
  curl -fsS -m 3 "http://$HOST:$NATS_HTTP_PORT/healthz" >/dev/null 2>&1 || return 1
  # and the client port speaks NATS (the server greets every client with INFO {...})
  local line
  # shellcheck disable=SC2016 # $0, $1 and $line belong to the inner shell
  line=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && read -r line <&3 && printf %s "$line"' \
    "$HOST" "$NATS_PORT" 2>/dev/null) || return 1
  [[ $line == INFO* ]]
}

start_nats() {
  if pid_alive "$NATS_PID" nats-server && check_nats; then
    log "nats: already running on $HOST:$NATS_PORT"
    return 0
  fi
  if check_nats; then
    log "nats: something already answers on $HOST:$NATS_PORT (not started by this script); using it"
    return 0
  fi
  mkdir -p "$RUN_DIR/nats-jetstream"
  cat >"$NATS_CONF" <<EOF
# Written by Taskpool's scripts/services.sh
listen: $HOST:$NATS_PORT
http: $HOST:$NATS_HTTP_PORT
jetstream {
  store_dir: "$RUN_DIR/nats-jetstream"
}
EOF
  launch "$NATS_PID" "$NATS_LOG" nats-server -c "$NATS_CONF"
  wait_for nats "$HOST:$NATS_PORT" 30 "$NATS_LOG" "$NATS_PID" nats-server check_nats
  log "nats: started on $HOST:$NATS_PORT (monitoring $HOST:$NATS_HTTP_PORT)"
}

stop_nats() { stop_pid nats "$NATS_PID" nats-server; }

status_nats() {
  local health
  if health=$(curl -fsS -m 3 "http://$HOST:$NATS_HTTP_PORT/healthz" 2>/dev/null) && check_nats; then
    report nats "$HOST:$NATS_PORT" up "healthz $health"
  else
    report nats "$HOST:$NATS_PORT" down "no answer; log $NATS_LOG"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# FerretDB v1.24.2 (built from the Go module proxy, PostgreSQL backend)
# ---------------------------------------------------------------------------

FERRETDB_PID="$RUN_DIR/ferretdb.pid"
FERRETDB_LOG="$LOG_DIR/ferretdb.log"

install_ferretdb() {
  [[ -x $FERRETDB_BIN ]] && return 0
  command -v go >/dev/null || die "ferretdb: Go (>= 1.24) is needed to build FerretDB $FERRETDB_VERSION, and 'go' is not on PATH"
  local mod="$BUILD_DIR/ferretdb-mod" src="$BUILD_DIR/ferretdb-src" build_log="$LOG_DIR/ferretdb-build.log"
  log "ferretdb: building $FERRETDB_VERSION (first time only, takes a minute or two; log $build_log)"
  local started=$SECONDS
  : >"$build_log"
  # 1. fetch the module through the Go module proxy, in a throwaway module
  #    (`go install ...@version` may be refused here, `go get -tool` works)
  rm -rf "$mod"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init x
    go get -tool "$FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION"
  ) >>"$build_log" 2>&1 || die_with_log "$build_log" "ferretdb: fetching $FERRETDB_MODULE@$FERRETDB_VERSION failed"
  local dir
  dir=$(cd "$mod" && go list -m -f '{{.Dir}}' "$FERRETDB_MODULE") || die_with_log "$build_log" "ferretdb: module directory not found"
  # 2. FerretDB's binary refuses to start without build/version/version.txt, a file its release
  #    tooling generates and the module zip lacks; build from a copy with that file added
  rm -rf "$src"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  (
    cd "$src"
    GOFLAGS=-buildvcs=false go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb
  ) >>"$build_log" 2>&1 || die_with_log "$build_log" "ferretdb: go build failed"
  "$FERRETDB_BIN.tmp" --version >>"$build_log" 2>&1 || die_with_log "$build_log" "ferretdb: the built binary does not run"
  mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  rm -rf "$src" "$mod"
  log "ferretdb: built $FERRETDB_BIN in $((SECONDS - started))s"
}

# a real wire-protocol round trip: `ping` through the mongodb driver in node_modules,
# or (before `npm ci`) a hand-made OP_MSG {ping: 1} from python3 (a docker-compose dependency)
check_ferretdb() {
  local node
  node=$(node_bin)
  if [[ -n $node && -d $REPO_DIR/node_modules/mongodb ]]; then
    (cd "$REPO_DIR" && timeout 10 "$node" -e '
      const { MongoClient } = require("mongodb");
      const client = new MongoClient(process.argv[1], { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
      client.connect()
        .then(() => client.db("admin").command({ ping: 1 }))
        .then((r) => client.close().then(() => process.exit(r.ok === 1 ? 0 : 1)))
        .catch(() => process.exit(1));
    ' "mongodb://$HOST:$MONGO_PORT/?directConnection=true") >/dev/null 2>&1
  else
    timeout 10 python3 - "$HOST" "$MONGO_PORT" >/dev/null 2>&1 <<'PY'
import socket, struct, sys

def element(kind, name, value):
    return bytes([kind]) + name.encode() + b"\0" + value

db = b"admin\0"
body = element(0x10, "ping", struct.pack("<i", 1)) + element(0x02, "$db", struct.pack("<i", len(db)) + db)
doc = struct.pack("<i", 4 + len(body) + 1) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc  # OP_MSG: flagBits, section kind 0, body document
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
    s.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg)
    reply = b""
    while len(reply) < 4 or len(reply) < struct.unpack("<i", reply[:4])[0]:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
# {ok: 1.0} in the reply document
sys.exit(0 if b"\x01ok\x00" + struct.pack("<d", 1.0) in reply else 1)
PY
  fi
}

start_ferretdb() {
  if pid_alive "$FERRETDB_PID" ferretdb && check_ferretdb; then
    log "ferretdb: already running on $HOST:$MONGO_PORT"
    return 0
  fi
  if pid_alive "$FERRETDB_PID" ferretdb; then
    # Running but not answering (seen once after its connection pool ran dry): start it afresh.
    log "ferretdb: running but not answering; restarting it"
    stop_ferretdb
  fi
  if ! pid_alive "$FERRETDB_PID" ferretdb; then
    mkdir -p "$RUN_DIR/ferretdb"
    DO_NOT_TRACK=1 launch "$FERRETDB_PID" "$FERRETDB_LOG" "$FERRETDB_BIN" \
      --listen-addr="$HOST:$MONGO_PORT" \
      --handler=postgresql \
      --postgresql-url="postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/ferretdb" \
      --state-dir="$RUN_DIR/ferretdb" \
      --telemetry=disable \
      --debug-addr=- \
      --log-level=info
  fi
  wait_for ferretdb "$HOST:$MONGO_PORT" 60 "$FERRETDB_LOG" "$FERRETDB_PID" ferretdb check_ferretdb
  log "ferretdb: started on $HOST:$MONGO_PORT (backend postgresql://$HOST:$PG_PORT/ferretdb)"
}

stop_ferretdb() { stop_pid ferretdb "$FERRETDB_PID" ferretdb; }

status_ferretdb() {
  if check_ferretdb; then
    report ferretdb "$HOST:$MONGO_PORT" up "ping ok"
  else
    report ferretdb "$HOST:$MONGO_PORT" down "no answer to ping; log $FERRETDB_LOG"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# Operaton engine (test/engine, Spring Boot jar built with Maven)
# ---------------------------------------------------------------------------

ENGINE_PID="$RUN_DIR/operaton.pid"
ENGINE_LOG="$LOG_DIR/operaton.log"
ENGINE_SUM_FILE="$ENGINE_JAR.sha256"     # checksum of the sources the jar was built from
ENGINE_RUN_SUM_FILE="$RUN_DIR/operaton.sha256" # checksum of the jar's sources the running engine uses

engine_sources_sum() { sha256_of_dir_files "$ENGINE_SRC" pom.xml src; }

install_operaton() {
  command -v java >/dev/null || apt_install openjdk-17-jdk-headless
  command -v mvn >/dev/null || apt_install maven
  local sum build_log="$LOG_DIR/operaton-build.log" out="$BUILD_DIR/engine"
  sum=$(engine_sources_sum)
  if [[ -f $ENGINE_JAR && -f $ENGINE_SUM_FILE && "$(<"$ENGINE_SUM_FILE")" == "$sum" ]]; then
    return 0
  fi
  log "operaton: building the engine jar from test/engine (the first build downloads from Maven Central; log $build_log)"
  local started=$SECONDS
  (cd "$ENGINE_SRC" && mvn -q -B package -DskipTests -Dengine.build.dir="$out") >"$build_log" 2>&1 \
    || die_with_log "$build_log" "operaton: mvn package failed; read $build_log"
  cp -f "$out/taskpool-test-engine.jar" "$ENGINE_JAR.tmp"
  mv -f "$ENGINE_JAR.tmp" "$ENGINE_JAR"
  echo "$sum" >"$ENGINE_SUM_FILE"
  log "operaton: built $ENGINE_JAR in $((SECONDS - started))s"
}

check_operaton() {
  curl -fsS -m 5 -o /dev/null "$ENGINE_URL/version" 2>/dev/null
}

# starts the JVM without waiting (it boots while the other servers start); see wait_operaton
launch_operaton() {
  if pid_alive "$ENGINE_PID" "$ENGINE_JAR"; then
    if [[ -f $ENGINE_RUN_SUM_FILE && "$(<"$ENGINE_RUN_SUM_FILE")" == "$(<"$ENGINE_SUM_FILE")" ]]; then
      return 0
    fi
    log "operaton: test/engine changed since the engine started, restarting it"
    stop_operaton
  fi
  if check_operaton; then
    die "operaton: something else answers on $HOST:$ENGINE_PORT; stop it first"
  fi
  # shellcheck disable=SC2086 # ENGINE_JAVA_OPTS is a list of options
  launch "$ENGINE_PID" "$ENGINE_LOG" java $ENGINE_JAVA_OPTS -jar "$ENGINE_JAR" \
    --server.address="$HOST" --server.port="$ENGINE_PORT"
  cp -f "$ENGINE_SUM_FILE" "$ENGINE_RUN_SUM_FILE"
  OPERATON_LAUNCHED_AT=$SECONDS
}

wait_operaton() {
  if [[ -z ${OPERATON_LAUNCHED_AT:-} ]] && check_operaton; then
    log "operaton: already running at $ENGINE_URL"
    return 0
  fi
  # the timeout counts from the launch (the JVM booted while the other servers started)
  local launched=${OPERATON_LAUNCHED_AT:-$SECONDS} left
  left=$((ENGINE_TIMEOUT - (SECONDS - launched)))
  ((left > 0)) || left=1
  wait_for operaton "$ENGINE_URL/version" "$left" "$ENGINE_LOG" "$ENGINE_PID" "$ENGINE_JAR" check_operaton
  if [[ -n ${OPERATON_LAUNCHED_AT:-} ]]; then
    log "operaton: started at $ENGINE_URL (took $((SECONDS - launched))s)"
  else
    log "operaton: answers at $ENGINE_URL (launched by an earlier run)"
  fi
}

start_operaton() {
  launch_operaton
  wait_operaton
}

stop_operaton() {
  stop_pid operaton "$ENGINE_PID" "$ENGINE_JAR"
  rm -f "$ENGINE_RUN_SUM_FILE"
}

status_operaton() {
  local version
  if version=$(curl -fsS -m 5 "$ENGINE_URL/version" 2>/dev/null); then
    report operaton "$HOST:$ENGINE_PORT" up "$version"
  elif ! engine_enabled; then
    report operaton "$HOST:$ENGINE_PORT" skipped "TASKPOOL_SKIP_ENGINE=1"
  else
    report operaton "$HOST:$ENGINE_PORT" down "no answer from $ENGINE_URL/version; log $ENGINE_LOG"
    return 1
  fi
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------

report() { # NAME ADDRESS STATE DETAIL
  printf '%-11s %-16s %-8s %s\n' "$1" "$2" "$3" "$4"
}

cmd_up() {
  mkdir -p "$BIN_DIR" "$BUILD_DIR" "$RUN_DIR" "$LOG_DIR"
  install_prereqs
  install_postgresql
  install_nats
  install_ferretdb
  engine_enabled && install_operaton
  install_extras

  engine_enabled && launch_operaton # the JVM boots while the others start
  start_postgresql
  start_nats
  start_ferretdb
  if engine_enabled; then
    wait_operaton
  else
    log "operaton: skipped (TASKPOOL_SKIP_ENGINE=1)"
  fi
  log "all up ($SECONDS s); logs in $LOG_DIR"
}

cmd_down() {
  stop_operaton
  stop_ferretdb
  stop_nats
  stop_postgresql
}

cmd_status() {
  local rc=0
  status_postgresql || rc=1
  status_nats || rc=1
  status_ferretdb || rc=1
  status_operaton || rc=1
  return "$rc"
}

cmd_env() {
  cat <<EOF
export TEST_DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@$HOST:$PG_PORT/taskpool_test
export TEST_NATS_URL=nats://$HOST:$NATS_PORT
export TEST_MONGO_URL=mongodb://$HOST:$MONGO_PORT/
export TEST_OPERATON_URL=$ENGINE_URL
EOF
}

usage() {
  sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
