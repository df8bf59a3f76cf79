#!/usr/bin/env bash
# ensure-backends.sh - make sure the services `make test` talks to are up:
#
#   PostgreSQL  127.0.0.1:5432  user postgres, no password (trust), database "chat"
#   Redis       127.0.0.1:6379  answers PING with PONG
#   RabbitMQ    127.0.0.1:5672  guest/guest, quorum queues usable
#
# For Debian 12 (bookworm) without systemd, run as root (re-runs itself under
# sudo otherwise). Idempotent: a service that is already running and healthy
# is never stopped or restarted; missing packages are installed from Debian's
# mirrors and stopped services are started the same way the machine starts
# them. Every wait is bounded. Exits 0 when all three are ready, non-zero with
# a message naming what failed otherwise.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Fixed on purpose (not read from the environment: e.g. Kubernetes exports
# REDIS_PORT=tcp://... for a service named redis).
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
PG_DB=chat
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
REDIS_DIR=/var/lib/redis
REDIS_LOGFILE=/var/log/redis/ci.log
RABBIT_HOST=127.0.0.1
RABBIT_PORT=5672
RABBIT_WAIT_SECS=90

LOG_PREFIX="[ensure-backends]"
STATE_DIR=""          # per-run scratch dir (markers shared with step subshells)
START_LOG_DIR=/tmp    # output of the commands that start daemons
FAILED=()

log()  { printf '%s %s\n' "$LOG_PREFIX" "$*"; }
step() { printf '%s ==> %s\n' "$LOG_PREFIX" "$*"; }
die()  { printf '%s ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }

# tail_file FILE: last lines of a log, indented, on stderr (for failures).
tail_file() {
    if [[ -f $1 ]]; then
        printf '%s --- last lines of %s ---\n' "$LOG_PREFIX" "$1" >&2
        tail -n 20 "$1" | sed 's/^/    /' >&2 || true
    fi
}

# tcp_open HOST PORT: something accepts TCP connections there (bash /dev/tcp).
tcp_open() {
    # shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
    timeout 3 bash -c ': <>"/dev/tcp/$0/$1"' "$1" "$2" >/dev/null 2>&1
}

# wait_for SECS CMD...: run CMD until it succeeds, for at most about SECS
# seconds (plus one last try of CMD, whose own time is bounded by its caller).
wait_for() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    while true; do
        if "$@"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 1
    done
}

# ---------------------------------------------------------------- root / apt

ensure_root() {
    if ((EUID == 0)); then
        return 0
    fi
    if command -v sudo >/dev/null 2>&1; then
        log "not running as root: re-running under sudo"
        local self
        self=$(readlink -f "${BASH_SOURCE[0]}")
        exec sudo -- env DEBIAN_FRONTEND=noninteractive bash "$self" "$@"
    fi
    die "must run as root (uid is $EUID) and sudo is not installed; run this script as root"
}

cleanup() {
    if [[ -n $STATE_DIR && -d $STATE_DIR ]]; then
        # An install interrupted mid-way must not leave our policy-rc.d behind.
        if [[ -f $STATE_DIR/policy-rc.d-created ]]; then
            rm -f /usr/sbin/policy-rc.d
        fi
        rm -rf "$STATE_DIR"
    fi
}

APT_OPTS=(-q -y -o DPkg::Lock::Timeout=300
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# apt_install PKG...: `apt-get update` once per script run, then install
# without letting the packages' maintainer scripts start any service.
apt_install() {
    local apt_log=$START_LOG_DIR/ensure-backends-apt.log
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: need Debian to install $*"

    if [[ ! -f $STATE_DIR/apt-updated ]]; then
        log "apt-get update (output: $apt_log)"
        if ! timeout 600 apt-get -q -o DPkg::Lock::Timeout=300 update >"$apt_log" 2>&1; then
            tail_file "$apt_log"
            die "apt-get update failed"
        fi
        : >"$STATE_DIR/apt-updated"
    fi

    # Debian's postinst scripts call invoke-rc.d to start the service; with no
    # init system that fails or half-works, so deny it (exit 101) during the
    # install and start the service ourselves afterwards. An existing
    # policy-rc.d (e.g. a container's) is left exactly as it is.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from ensure-backends.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        : >"$STATE_DIR/policy-rc.d-created"
    fi

    log "apt-get install $* (output: $apt_log)"
    local ok=0
    if timeout 1800 apt-get "${APT_OPTS[@]}" install --no-install-recommends "$@" </dev/null >>"$apt_log" 2>&1; then
        ok=1
    else
        # One retry after finishing an interrupted dpkg run, if that was it.
        log "apt-get install failed; running dpkg --configure -a and retrying once"
        timeout 600 dpkg --force-confdef --force-confold --configure -a </dev/null >>"$apt_log" 2>&1 || true
        if timeout 1800 apt-get "${APT_OPTS[@]}" install --no-install-recommends "$@" </dev/null >>"$apt_log" 2>&1; then
            ok=1
        fi
    fi

    if [[ -f $STATE_DIR/policy-rc.d-created ]]; then
        rm -f /usr/sbin/policy-rc.d "$STATE_DIR/policy-rc.d-created"
    fi
    if ((ok == 0)); then
        tail_file "$apt_log"
        die "apt-get install $* failed"
    fi
    hash -r
}

# ---------------------------------------------------------------- PostgreSQL

# pg_psql ARGS...: psql over TCP as postgres, with no password from anywhere
# (no prompt, no PGPASSWORD, no ~/.pgpass): what the tests rely on.
pg_psql() {
    env -u PGPASSWORD PGPASSFILE=/nonexistent/ensure-backends-pgpass PGCONNECT_TIMEOUT=5 LC_ALL=C timeout 30 \
        psql -X -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

pg_server_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 &&
        command -v pg_lsclusters >/dev/null 2>&1 &&
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# pg_cluster: "VERSION NAME STATUS" of the Debian cluster configured for
# port 5432, or nothing.
pg_cluster() {
    if ! command -v pg_lsclusters >/dev/null 2>&1; then
        return 0
    fi
    pg_lsclusters --no-header 2>/dev/null |
        awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }' || true
}

pg_ready() {
    timeout 10 pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1
}

pg_can_login() {
    pg_psql -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

pg_start_cluster() {
    local line ver name status
    line=$(pg_cluster)
    if [[ -z $line ]]; then
        if [[ -n $(pg_lsclusters --no-header 2>/dev/null || true) ]]; then
            die "PostgreSQL: clusters exist but none uses port $PG_PORT: $(pg_lsclusters --no-header | tr '\n' ';')"
        fi
        ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
        [[ -n $ver ]] || die "PostgreSQL: no server version found under /usr/lib/postgresql"
        log "PostgreSQL: no cluster exists; creating $ver/main on port $PG_PORT"
        timeout 300 pg_createcluster "$ver" main --port "$PG_PORT" </dev/null \
            >"$START_LOG_DIR/ensure-backends-postgres-start.log" 2>&1 ||
            { tail_file "$START_LOG_DIR/ensure-backends-postgres-start.log"; die "PostgreSQL: pg_createcluster $ver main failed"; }
        line=$(pg_cluster)
        [[ -n $line ]] || die "PostgreSQL: cluster $ver/main was not created"
    fi
    read -r ver name status <<<"$line"
    if [[ $status == online* ]]; then
        log "PostgreSQL: cluster $ver/$name is already running; waiting for it to accept connections"
        return 0
    fi
    # Same command that starts it on this kind of machine:
    #   pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    local start_log=$START_LOG_DIR/ensure-backends-postgres-start.log
    log "PostgreSQL: starting cluster $ver/$name (pg_ctlcluster --skip-systemctl-redirect $ver $name start)"
    if ! timeout 120 pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start \
        </dev/null >"$start_log" 2>&1; then
        tail_file "$start_log"
        tail_file "/var/log/postgresql/postgresql-$ver-$name.log"
        die "PostgreSQL: pg_ctlcluster $ver $name start failed"
    fi
}

# Put trust lines for 127.0.0.1/32 and ::1/128 at the top of pg_hba.conf of
# the running cluster and reload it (a reload, not a restart).
pg_trust_local_tcp() {
    local hba="" line ver="" name=""
    line=$(pg_cluster)
    if [[ -n $line ]]; then
        read -r ver name _ <<<"$line"
    fi
    # Ask the server itself (over the Unix socket, peer auth as postgres) ...
    hba=$(cd / && timeout 20 runuser -u postgres -- \
        psql -X -w -p "$PG_PORT" -Atqc 'show hba_file' 2>/dev/null) || hba=""
    # ... or fall back to Debian's layout.
    if [[ -z $hba && -n $ver ]]; then
        hba=/etc/postgresql/$ver/$name/pg_hba.conf
    fi
    [[ -n $hba && -f $hba ]] || die "PostgreSQL: cannot find the active pg_hba.conf to allow password-less TCP logins"

    local first
    first=$(grep -Ev '^[[:space:]]*(#|$)' "$hba" | head -n 1 | tr -s '[:space:]' ' ' || true)
    if [[ ${first% } == "host all all 127.0.0.1/32 trust" ]]; then
        log "PostgreSQL: $hba already starts with the trust lines; reloading"
    else
        log "PostgreSQL: adding 'host all all 127.0.0.1/32 trust' and 'host all all ::1/128 trust' at the top of $hba"
        local tmp
        tmp=$(mktemp)
        {
            printf '%s\n' \
                '# Added by tests/scripts/ensure-backends.sh: password-less TCP logins on loopback for tests.' \
                'host    all             all             127.0.0.1/32            trust' \
                'host    all             all             ::1/128                 trust'
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba" # keeps the file's owner and mode
        rm -f "$tmp"
    fi

    if [[ -n $ver ]]; then
        timeout 60 pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload </dev/null >/dev/null 2>&1 ||
            die "PostgreSQL: pg_ctlcluster $ver $name reload failed"
    else
        (cd / && timeout 20 runuser -u postgres -- psql -X -w -p "$PG_PORT" -Atqc 'select pg_reload_conf()') >/dev/null 2>&1 ||
            die "PostgreSQL: could not reload the server configuration"
    fi
}

ensure_postgres() {
    step "PostgreSQL: checking $PG_HOST:$PG_PORT"
    if tcp_open "$PG_HOST" "$PG_PORT"; then
        log "PostgreSQL: a server is listening on $PG_HOST:$PG_PORT"
        if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
            apt_install postgresql-client
        fi
    else
        if ! pg_server_installed || ! command -v psql >/dev/null 2>&1; then
            log "PostgreSQL: server or psql not installed"
            apt_install postgresql postgresql-client
        fi
        pg_server_installed || die "PostgreSQL: server still not installed after apt-get install"
        pg_start_cluster
    fi

    if ! wait_for 60 pg_ready; then
        local ver="" name=""
        read -r ver name _ <<<"$(pg_cluster)" || true
        if [[ -n $ver ]]; then
            tail_file "/var/log/postgresql/postgresql-$ver-$name.log"
        fi
        die "PostgreSQL: not accepting connections on $PG_HOST:$PG_PORT after 60 s"
    fi

    local err
    if err=$(pg_psql -d postgres -Atqc 'select 1' 2>&1 >/dev/null); then
        log "PostgreSQL: user $PG_USER logs in over TCP without a password"
    else
        case $err in
            *password* | *authentication* | *pg_hba* | *fe_sendauth*)
                log "PostgreSQL: password-less login refused ($(echo "$err" | tail -n 1))"
                pg_trust_local_tcp
                wait_for 15 pg_can_login ||
                    die "PostgreSQL: user $PG_USER still cannot log in without a password after the pg_hba.conf change: $(pg_psql -d postgres -Atqc 'select 1' 2>&1 >/dev/null | tail -n 1)"
                log "PostgreSQL: user $PG_USER now logs in over TCP without a password"
                ;;
            *)
                die "PostgreSQL: cannot log in as $PG_USER on $PG_HOST:$PG_PORT: $err"
                ;;
        esac
    fi

    local exists
    exists=$(pg_psql -d postgres -Atqc "select 1 from pg_database where datname = '$PG_DB'" 2>"$STATE_DIR/pg.err") ||
        die "PostgreSQL: could not query pg_database: $(cat "$STATE_DIR/pg.err")"
    if [[ $exists == 1 ]]; then
        log "PostgreSQL: database $PG_DB exists"
    else
        # A cluster created under the C/POSIX locale defaults to SQL_ASCII;
        # make the test database UTF8 in any case.
        local enc sql
        enc=$(pg_psql -d postgres -Atqc "select pg_encoding_to_char(encoding) from pg_database where datname = 'template1'" 2>/dev/null || true)
        if [[ $enc == UTF8 ]]; then
            sql="CREATE DATABASE $PG_DB"
        else
            sql="CREATE DATABASE $PG_DB TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        fi
        log "PostgreSQL: creating database $PG_DB"
        if ! err=$(pg_psql -d postgres -qc "$sql" 2>&1 >/dev/null); then
            # Tolerate a concurrent creator.
            exists=$(pg_psql -d postgres -Atqc "select 1 from pg_database where datname = '$PG_DB'" 2>/dev/null || true)
            [[ $exists == 1 ]] || die "PostgreSQL: CREATE DATABASE $PG_DB failed: $err"
        fi
    fi
    log "PostgreSQL: ready"
}

# --------------------------------------------------------------------- Redis

redis_pong() {
    [[ $(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

ensure_redis() {
    step "Redis: checking $REDIS_HOST:$REDIS_PORT"
    if ! command -v redis-cli >/dev/null 2>&1; then
        if tcp_open "$REDIS_HOST" "$REDIS_PORT"; then
            apt_install redis-tools
        else
            apt_install redis-server redis-tools
        fi
    fi

    if tcp_open "$REDIS_HOST" "$REDIS_PORT"; then
        # Running (possibly still loading): never restart it.
        if wait_for 30 redis_pong; then
            log "Redis: already running, PING -> PONG"
            return 0
        fi
        die "Redis: something listens on $REDIS_HOST:$REDIS_PORT but does not answer PING with PONG: $(timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1 | tail -n 1)"
    fi

    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server redis-tools
    fi
    mkdir -p "$REDIS_DIR" "$(dirname "$REDIS_LOGFILE")"
    local start_log=$START_LOG_DIR/ensure-backends-redis-start.log
    log "Redis: starting (redis-server --daemonize yes --port $REDIS_PORT, log $REDIS_LOGFILE)"
    if ! timeout 30 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_LOGFILE" \
        </dev/null >"$start_log" 2>&1; then
        tail_file "$start_log"
        tail_file "$REDIS_LOGFILE"
        die "Redis: redis-server failed to start"
    fi
    if ! wait_for 30 redis_pong; then
        tail_file "$REDIS_LOGFILE"
        die "Redis: started but no PONG from $REDIS_HOST:$REDIS_PORT within 30 s"
    fi
    log "Redis: started, PING -> PONG"
}

# ------------------------------------------------------------------ RabbitMQ

rmq() { timeout 60 rabbitmqctl "$@"; }

rmq_ping() {
    timeout 30 rabbitmq-diagnostics -q ping </dev/null >/dev/null 2>&1
}

rmq_booted() {
    timeout 30 rabbitmqctl -q await_startup --timeout 20 </dev/null >/dev/null 2>&1
}

rmq_port_open() { tcp_open "$RABBIT_HOST" "$RABBIT_PORT"; }

# A RabbitMQ Erlang VM exists (e.g. still booting), without needing procps.
rmq_beam_running() {
    if command -v pgrep >/dev/null 2>&1; then
        pgrep -f 'beam\.smp.*rabbit' >/dev/null 2>&1
        return
    fi
    local f cmd
    for f in /proc/[0-9]*/cmdline; do
        cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
        if [[ $cmd == *beam.smp*rabbit* ]]; then
            return 0
        fi
    done
    return 1
}

rmq_logs_to_stderr() {
    local f
    tail_file "$START_LOG_DIR/ensure-backends-rabbitmq-start.log"
    for f in /var/log/rabbitmq/*.log; do
        [[ -f $f && $f != *_upgrade.log ]] && tail_file "$f"
    done
    return 0
}

# The Erlang node name is rabbit@<short hostname>; if that name does not
# resolve (some containers), the broker cannot start. Only then pin the
# node name to rabbit@localhost.
rmq_check_nodename() {
    local conf=/etc/rabbitmq/rabbitmq-env.conf short=${HOSTNAME%%.*}
    if [[ -f $conf ]] && grep -Eq '^[[:space:]]*(export[[:space:]]+)?NODENAME=' "$conf"; then
        return 0
    fi
    if [[ -n $short ]] && getent hosts "$short" >/dev/null 2>&1; then
        return 0
    fi
    log "RabbitMQ: host name '$short' does not resolve; setting NODENAME=rabbit@localhost in $conf"
    mkdir -p /etc/rabbitmq
    printf 'NODENAME=rabbit@localhost\n' >>"$conf"
}

rmq_ensure_quorum_queues() {
    local out state
    out=$(rmq -s list_feature_flags name state 2>&1) ||
        die "RabbitMQ: rabbitmqctl list_feature_flags failed: $out"
    state=$(awk '$1 == "quorum_queue" { print $2 }' <<<"$out")
    case $state in
        enabled)
            log "RabbitMQ: feature flag quorum_queue is enabled"
            ;;
        disabled)
            log "RabbitMQ: enabling feature flag quorum_queue"
            out=$(rmq -q enable_feature_flag quorum_queue 2>&1) ||
                die "RabbitMQ: rabbitmqctl enable_feature_flag quorum_queue failed: $out"
            out=$(rmq -s list_feature_flags name state 2>&1) || true
            [[ $(awk '$1 == "quorum_queue" { print $2 }' <<<"$out") == enabled ]] ||
                die "RabbitMQ: feature flag quorum_queue is still not enabled"
            log "RabbitMQ: feature flag quorum_queue is enabled"
            ;;
        "")
            die "RabbitMQ: no quorum_queue feature flag (broker older than 3.8?): quorum queues unavailable"
            ;;
        *)
            die "RabbitMQ: feature flag quorum_queue is in state '$state'"
            ;;
    esac
}

rmq_ensure_guest() {
    local out
    if rmq -q authenticate_user guest guest </dev/null >/dev/null 2>&1; then
        log "RabbitMQ: guest/guest authenticates"
    else
        out=$(rmq -s list_users 2>&1) || die "RabbitMQ: rabbitmqctl list_users failed: $out"
        if awk '{ print $1 }' <<<"$out" | grep -qx guest; then
            die "RabbitMQ: user guest exists but its password is not 'guest' (left unchanged)"
        fi
        log "RabbitMQ: user guest is missing; creating guest/guest (administrator)"
        rmq -q add_user guest guest >/dev/null 2>&1 || die "RabbitMQ: rabbitmqctl add_user guest failed"
        rmq -q set_user_tags guest administrator >/dev/null 2>&1 || die "RabbitMQ: rabbitmqctl set_user_tags guest failed"
    fi
    out=$(rmq -s list_user_permissions guest 2>&1) || die "RabbitMQ: rabbitmqctl list_user_permissions guest failed: $out"
    if ! awk '$1 == "/"' <<<"$out" | grep -q .; then
        log "RabbitMQ: granting guest full permissions on vhost /"
        rmq -q set_permissions -p / guest '.*' '.*' '.*' >/dev/null 2>&1 ||
            die "RabbitMQ: rabbitmqctl set_permissions guest failed"
    fi
}

ensure_rabbitmq() {
    step "RabbitMQ: checking $RABBIT_HOST:$RABBIT_PORT"
    if ! command -v rabbitmqctl >/dev/null 2>&1 || ! command -v rabbitmq-server >/dev/null 2>&1 ||
        ! command -v rabbitmq-diagnostics >/dev/null 2>&1; then
        apt_install rabbitmq-server
    fi

    if rmq_ping; then
        log "RabbitMQ: node is running; checking it has fully started (await_startup, up to ${RABBIT_WAIT_SECS} s)"
        wait_for "$RABBIT_WAIT_SECS" rmq_booted ||
            { rmq_logs_to_stderr; die "RabbitMQ: node answers ping but did not finish starting within ${RABBIT_WAIT_SECS} s"; }
    elif rmq_beam_running; then
        # Never start a second node or kill one that is still booting.
        log "RabbitMQ: a node process exists but does not answer yet; waiting up to ${RABBIT_WAIT_SECS} s"
        wait_for "$RABBIT_WAIT_SECS" rmq_booted ||
            { rmq_logs_to_stderr; die "RabbitMQ: node process exists but did not become ready within ${RABBIT_WAIT_SECS} s (left running)"; }
    else
        if rmq_port_open; then
            die "RabbitMQ: $RABBIT_HOST:$RABBIT_PORT is taken by something rabbitmqctl cannot reach"
        fi
        rmq_check_nodename
        local start_log=$START_LOG_DIR/ensure-backends-rabbitmq-start.log
        log "RabbitMQ: starting (rabbitmq-server -detached), waiting up to ${RABBIT_WAIT_SECS} s"
        if ! timeout 60 rabbitmq-server -detached </dev/null >"$start_log" 2>&1; then
            rmq_logs_to_stderr
            die "RabbitMQ: rabbitmq-server -detached failed"
        fi
        if ! wait_for "$RABBIT_WAIT_SECS" rmq_booted; then
            rmq_logs_to_stderr
            die "RabbitMQ: not started within ${RABBIT_WAIT_SECS} s (rabbitmqctl await_startup never succeeded)"
        fi
        log "RabbitMQ: started"
    fi

    wait_for 30 rmq_port_open ||
        die "RabbitMQ: node is up but $RABBIT_HOST:$RABBIT_PORT does not accept connections"
    log "RabbitMQ: AMQP port $RABBIT_HOST:$RABBIT_PORT is open"
    rmq_ensure_quorum_queues
    rmq_ensure_guest
    log "RabbitMQ: ready"
}

# ---------------------------------------------------------------------- main

# run_step NAME FUNCTION: run one service's checks in a subshell with errexit
# on, so that one failing service does not hide the state of the others.
run_step() {
    local name=$1 fn=$2 rc
    set +e
    (
        set -e
        "$fn"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        FAILED+=("$name")
    fi
}

main() {
    ensure_root "$@"
    STATE_DIR=$(mktemp -d /tmp/ensure-backends.XXXXXX)
    trap cleanup EXIT
    local started=$SECONDS

    run_step PostgreSQL ensure_postgres
    run_step Redis ensure_redis
    run_step RabbitMQ ensure_rabbitmq

    if ((${#FAILED[@]} > 0)); then
        printf '%s FAILED: not ready: %s (see the ERROR lines above)\n' "$LOG_PREFIX" "${FAILED[*]}" >&2
        exit 1
    fi
    log "all backends ready in $((SECONDS - started)) s: PostgreSQL $PG_HOST:$PG_PORT (db $PG_DB), Redis $REDIS_HOST:$REDIS_PORT, RabbitMQ $RABBIT_HOST:$RABBIT_PORT"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
