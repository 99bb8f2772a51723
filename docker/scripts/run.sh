#!/usr/bin/env bash
# Start or stop the HHmL compose stacks.
#
#   docker/scripts/run.sh production    GPU training + dashboard (127.0.0.1:8000)
#                                       + TensorBoard (127.0.0.1:6006), docker/docker-compose.yml
#   docker/scripts/run.sh development   JupyterLab (127.0.0.1:8888) on the source tree,
#                                       docker/docker-compose.dev.yml
#   docker/scripts/run.sh stop          stop both stacks (results/ is kept)
#
# Environment: HHML_CONFIG (training config, default configs/experiment/quickstart.yaml),
# HHML_UID / HHML_GID (default: your uid/gid).
set -euo pipefail

usage() {
    echo "usage: $(basename "$0") [production|development|stop]" >&2
}

if [[ $# -ne 1 ]]; then
    usage
    exit 2
fi
mode="$1"
case "$mode" in
    production | development | stop) ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "error: unknown mode '$mode'" >&2
        usage
        exit 2
        ;;
esac

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"
prod_file="$repo_root/docker/docker-compose.yml"
dev_file="$repo_root/docker/docker-compose.dev.yml"

if ! command -v docker >/dev/null 2>&1; then
    echo "error: 'docker' not found on PATH; install Docker Engine (https://docs.docker.com/engine/install/)" >&2
    exit 1
fi
if ! docker compose version >/dev/null 2>&1; then
    echo "error: the Docker Compose plugin ('docker compose') is not installed" >&2
    exit 1
fi

export HHML_UID="${HHML_UID:-$(id -u)}"
export HHML_GID="${HHML_GID:-$(id -g)}"

# The containers run as HHML_UID: create the bind-mounted results directory first, or
# Docker creates it owned by root.
mkdir -p "$repo_root/results/runs"

case "$mode" in
    production)
        docker compose -f "$prod_file" up -d --build
        echo "dashboard:   http://127.0.0.1:8000/"
        echo "tensorboard: http://127.0.0.1:6006/"
        echo "logs:        docker compose -f $prod_file logs -f train"
        ;;
    development)
        docker compose -f "$dev_file" up -d --build dev
        echo "jupyterlab:  http://127.0.0.1:8888/  (token: docker compose -f $dev_file logs dev)"
        echo "cpu training: docker compose -f $dev_file run --rm train-cpu"
        ;;
    stop)
        docker compose -f "$prod_file" down
        docker compose -f "$dev_file" down
        ;;
esac
