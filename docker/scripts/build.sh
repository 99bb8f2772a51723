#!/usr/bin/env bash
# Build the HHmL container images from the repository root.
#
#   docker/scripts/build.sh [all|cpu|cuda|dev]      (default: all)
#
# Tags: hhml:cpu, hhml:cuda, hhml:dev. Environment: HHML_UID / HHML_GID (default: your
# uid/gid, so that files the containers write into bind mounts belong to you),
# TORCH_VERSION (default 2.13.0), DOCKER_BUILD_ARGS (extra arguments for `docker build`,
# e.g. "--no-cache --pull").
set -euo pipefail

usage() {
    echo "usage: $(basename "$0") [all|cpu|cuda|dev]" >&2
    echo "  builds hhml:cpu, hhml:cuda and/or hhml:dev from docker/Dockerfile.<target>" >&2
}

target="${1:-all}"
if [[ $# -gt 1 ]]; then
    usage
    exit 2
fi
case "$target" in
    all) targets=(cpu cuda dev) ;;
    cpu | cuda | dev) targets=("$target") ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "error: unknown target '$target'" >&2
        usage
        exit 2
        ;;
esac

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../.." && pwd)"

if ! command -v docker >/dev/null 2>&1; then
    echo "error: 'docker' not found on PATH; install Docker Engine (https://docs.docker.com/engine/install/)" >&2
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    echo "error: cannot reach the Docker daemon (is it running, and may you use it?)" >&2
    exit 1
fi

uid="${HHML_UID:-$(id -u)}"
gid="${HHML_GID:-$(id -g)}"
torch_version="${TORCH_VERSION:-2.13.0}"
read -r -a extra_args <<<"${DOCKER_BUILD_ARGS:-}"

for t in "${targets[@]}"; do
    echo ">>> building hhml:$t (docker/Dockerfile.$t, context $repo_root)"
    docker build \
        --file "$repo_root/docker/Dockerfile.$t" \
        --tag "hhml:$t" \
        --build-arg "HHML_UID=$uid" \
        --build-arg "HHML_GID=$gid" \
        --build-arg "TORCH_VERSION=$torch_version" \
        ${extra_args[@]+"${extra_args[@]}"} \
        "$repo_root"
done
echo ">>> built: ${targets[*]/#/hhml:}"
