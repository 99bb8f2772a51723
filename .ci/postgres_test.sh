#!/usr/bin/env bash
# The shared-study test of hhml-optimize against a real PostgreSQL server.
#
#   bash .ci/postgres_test.sh            (from the repository root, after `make install`)
#
# Starts a throwaway PostgreSQL cluster from Debian's packages (installed with apt-get when
# missing and this is root) on a free local port, creates a database, installs the psycopg
# driver (version 3: SQLAlchemy's default for postgresql://) into the venv if missing, and
# runs tests/unit/test_optimize.py::test_two_workers_share_one_postgresql_study with
# HHML_TEST_POSTGRES_URL pointing at it (two worker processes, one study). The cluster and
# its directory are removed on exit. Exits non-zero when the server cannot be set up, so a
# broken PostgreSQL path is never reported as a pass.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
START=$(date +%s)

pg_bin() {
    find /usr/lib/postgresql -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1
}

if [ -z "$(pg_bin)" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "postgres_test: PostgreSQL is not installed and cannot be installed here" >&2
        exit 1
    fi
fi
BIN="$(pg_bin)"
echo "postgres_test: using $("$BIN/postgres" --version)"

# PostgreSQL refuses to run as root: run the server as the packages' postgres user then.
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
    RUN_AS=(runuser -u postgres --)
fi
WORK="$(mktemp -d /tmp/hhml-pg.XXXXXX)"
chmod 755 "$WORK"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$WORK"
fi
PORT="$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

cleanup() {
    "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"${RUN_AS[@]}" "$BIN/initdb" -D "$WORK/data" -U hhml -A trust --no-sync >/dev/null
"${RUN_AS[@]}" "$BIN/pg_ctl" -D "$WORK/data" -w -t 60 -l "$WORK/server.log" \
    -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
"${RUN_AS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U hhml hhml_test
echo "postgres_test: server up on port $PORT after $(($(date +%s) - START)) s"

if ! "$VENV/bin/python" -c "import psycopg" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip install -q "psycopg[binary]>=3.1"
fi

HHML_TEST_POSTGRES_URL="postgresql://hhml@127.0.0.1:$PORT/hhml_test" \
    "$VENV/bin/python" -m pytest -q -m slow tests/unit/test_optimize.py \
    -k test_two_workers_share_one_postgresql_study -rs -p no:cacheprovider |
    tee "$WORK/pytest.log"
# a skip would be a silent pass: require exactly one passed test
grep -q "1 passed" "$WORK/pytest.log"
echo "postgres_test: passed in $(($(date +%s) - START)) s"
