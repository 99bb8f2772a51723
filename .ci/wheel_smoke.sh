#!/usr/bin/env bash
# Wheel smoke test: what a user gets from `pip install hhml` and nothing else.
#
#   bash .ci/wheel_smoke.sh            (or: make wheel-check)
#
# Builds the wheel from a copy of the working tree, installs it into a new virtual
# environment (torch from TORCH_SPEC first, then the wheel with its dependencies), and
# runs the console scripts from an empty temporary directory that is also HOME, so no
# checkout, configs/ or user file can answer for the package:
#   hhml-train --config quickstart ...   bare hhml-train ...   (small step counts)
#   hhml-analyze <the quickstart run>    hhml-validate --quick
# and checks what they wrote (metrics.json status "completed", the analysis report, no
# carriage return in the piped progress output). A failing step is named on stderr.
#
# Environment:
#   PYTHON          interpreter of the new venv (default python3)
#   VENV            the developer venv whose python builds the wheel (default .venv;
#                   needs setuptools and wheel, as after `make install`)
#   TORCH_SPEC      torch requirement installed first (default torch==2.13.0)
#   WHEEL_SMOKE_DIR where the smoke venv and its C++ kernel cache live (default
#                   ~/.cache/hhml-wheel-smoke). The venv is deleted and created anew on
#                   every run; the kernel cache (TORCH_EXTENSIONS_DIR) is kept.
# pip's cache (~/.cache/pip) is used as usual, so only the first run downloads.
# Takes about 2-3 minutes on 2 cores.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
SMOKE_DIR="${WHEEL_SMOKE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hhml-wheel-smoke}"
case "$VENV" in
    /*) BUILD_PY="$VENV/bin/python" ;;
    *) BUILD_PY="$REPO/$VENV/bin/python" ;;
esac
SMOKE_VENV="$SMOKE_DIR/venv"

START=$(date +%s)
STEP="setup"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hhml-wheel-smoke.XXXXXX")"

step() {
    STEP="$*"
    printf '\n---- [wheel smoke +%ss] %s ----\n' "$(($(date +%s) - START))" "$*"
}

on_exit() {
    local rc=$?
    rm -rf "$TMP"
    if [ "$rc" -ne 0 ]; then
        printf '\nWHEEL SMOKE FAILED in step "%s" (exit %s) after %ss\n' \
            "$STEP" "$rc" "$(($(date +%s) - START))" >&2
    fi
}
trap on_exit EXIT

die() {
    printf 'wheel smoke: %s: %s\n' "$STEP" "$*" >&2
    exit 1
}

if [ ! -x "$BUILD_PY" ]; then
    die "no $BUILD_PY to build the wheel with; run 'make install' first (or set VENV)"
fi

step "build the wheel (from a copy of the working tree)"
# A copy, so that build/ and *.egg-info never appear in the checkout.
mkdir -p "$TMP/source" "$TMP/dist"
cp pyproject.toml README.md LICENSE "$TMP/source/"
tar -C "$REPO" -cf - --exclude=__pycache__ --exclude='*.egg-info' --exclude='*.so' \
    --exclude=build src | tar -C "$TMP/source" -xf -
"$BUILD_PY" -m pip wheel --no-deps --no-build-isolation -q -w "$TMP/dist" "$TMP/source"
WHEELS=("$TMP"/dist/hhml-*.whl)
[ "${#WHEELS[@]}" -eq 1 ] && [ -f "${WHEELS[0]}" ] || die "expected one hhml wheel in $TMP/dist"
WHEEL="${WHEELS[0]}"
echo "built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

step "wheel contents (kernel sources, dashboard files, py.typed, the quickstart config)"
# The full list of packaged configs is checked by tests/unit/test_packaged_configs.py.
"$BUILD_PY" - "$WHEEL" <<'EOF'
import sys
import zipfile

names = set(zipfile.ZipFile(sys.argv[1]).namelist())
wanted = {
    "hhml/py.typed": "py.typed",
    "hhml/configs/experiment/quickstart.yaml": "the quickstart config",
}
missing = [f"{path} ({what})" for path, what in wanted.items() if path not in names]
for prefix, what in (
    ("hhml/core/resonance/csrc/", "C++ kernel sources"),
    ("hhml/ml/env/csrc/", "C++ env kernel sources"),
    ("hhml/monitoring/static/", "dashboard files"),
):
    if not any(n.startswith(prefix) for n in names):
        missing.append(f"{prefix}* ({what})")
if missing:
    sys.exit("the wheel lacks " + ", ".join(missing))
print(f"{len(names)} files, {sum(n.endswith('.yaml') for n in names)} YAML configs")
EOF

step "fresh venv at $SMOKE_VENV (${PYTHON})"
mkdir -p "$SMOKE_DIR"
# The previous venv (torch: ~1 GB in many files) is renamed away at once and deleted in
# the background: deleting it in line can take minutes on a busy disk.
if [ -e "$SMOKE_VENV" ]; then
    mv "$SMOKE_VENV" "$SMOKE_DIR/old-venv.$$"
fi
# Leftovers of earlier runs as well; nothing is deleted under $SMOKE_DIR but old venvs.
find "$SMOKE_DIR" -maxdepth 1 -name 'old-venv.*' -exec rm -rf {} + >/dev/null 2>&1 &
"$PYTHON" -m venv "$SMOKE_VENV"
SPY="$SMOKE_VENV/bin/python"
"$SPY" --version

step "install ${TORCH_SPEC}"
"$SPY" -m pip install -q "$TORCH_SPEC"

step "install the wheel with its dependencies"
"$SPY" -m pip install -q "$WHEEL"
# The C++ kernels compile on first use into TORCH_EXTENSIONS_DIR (below), which is kept
# between runs of this script; the venv's fixed path keeps torch's build commands the
# same. ninja rebuilds a kernel whose source is newer than its build, and pip gives every
# installed file the time of the install: give the installed kernel sources the times of
# the working tree's files instead, so an unchanged source is not compiled again (about a
# minute per kernel) and a changed one is.
SITE="$("$SPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
while IFS= read -r -d '' source; do
    installed="$SITE/hhml/${source#src/hhml/}"
    [ -f "$installed" ] || die "the installed package lacks $installed (from $source)"
    touch -r "$source" "$installed"
done < <(find src/hhml -path '*/csrc/*' -type f -print0)

# Everything from here runs in an empty directory that is also HOME, without the
# checkout on any path. TORCH_EXTENSIONS_DIR is not the developer venv's
# ~/.cache/torch_extensions: a build there records that venv's torch headers and source
# paths, so sharing it would recompile in both venvs, each time, in turn.
WORK="$TMP/work"
mkdir -p "$WORK"
cd "$WORK"
export HOME="$WORK"
export TORCH_EXTENSIONS_DIR="$SMOKE_DIR/torch_extensions"
export MPLBACKEND=Agg
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
BIN="$SMOKE_VENV/bin"

step "the package is the installed wheel, not the checkout"
"$BIN/python" - "$SMOKE_VENV" <<'EOF'
import sys
from pathlib import Path

import hhml

where = Path(hhml.__file__).resolve()
venv = Path(sys.argv[1]).resolve()
if venv not in where.parents:
    sys.exit(f"hhml imports from {where}, not from the smoke venv {venv}")
print(f"hhml {hhml.__version__} from {where.parent}")
EOF

# Small runs: 2 evaluation/checkpoint/snapshot intervals, a few agent updates.
SMALL=(
    training.total_steps=160 agent.learning_starts=80 agent.batch_size=32
    training.eval_every=80 training.eval_episodes=1 training.log_every=40
    training.checkpoint_every=80 training.snapshot_every=80 training.device=cpu
)

check_run() {
    "$BIN/python" - "$1" <<'EOF'
import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
summary = json.loads((run / "metrics.json").read_text())
if summary.get("status") != "completed":
    sys.exit(f"{run}/metrics.json: status {summary.get('status')!r}, expected 'completed'")
for name in ("config.yaml", "metrics.jsonl", "model_last.pt"):
    if not (run / name).is_file():
        sys.exit(f"{run} lacks {name}")
print(f"{run.name}: completed at step {summary.get('step')}")
EOF
}

no_carriage_returns() {
    if grep -q $'\r' "$1"; then
        die "$1 holds a carriage return (a progress bar written to a pipe)"
    fi
}

step "hhml-train --config quickstart (small)"
"$BIN/hhml-train" --config quickstart "${SMALL[@]}" --run-dir runs/quickstart \
    2>"$TMP/train.err" || {
    cat "$TMP/train.err" >&2
    die "hhml-train --config quickstart failed"
}
cat "$TMP/train.err" >&2
no_carriage_returns "$TMP/train.err"
check_run runs/quickstart

step "bare hhml-train (small)"
# No --config: hhml-train trains the packaged quickstart experiment, with the OVERRIDES
# (here only the small step counts) applied to it, and says so on stderr.
"$BIN/hhml-train" "${SMALL[@]}" --run-dir runs/bare 2>"$TMP/bare.err" || {
    cat "$TMP/bare.err" >&2
    die "bare hhml-train failed"
}
cat "$TMP/bare.err" >&2
no_carriage_returns "$TMP/bare.err"
grep -q "no --config: applying the OVERRIDES to the quickstart experiment" "$TMP/bare.err" ||
    die "bare hhml-train did not say that it trains the quickstart experiment"
check_run runs/bare

step "hhml-analyze runs/quickstart"
"$BIN/hhml-analyze" runs/quickstart --out analysis 2>"$TMP/analyze.err" || {
    cat "$TMP/analyze.err" >&2
    die "hhml-analyze failed"
}
cat "$TMP/analyze.err" >&2
no_carriage_returns "$TMP/analyze.err"
for name in report.md report.json rewards.png; do
    [ -s "analysis/$name" ] || die "hhml-analyze wrote no analysis/$name"
done

step "hhml-validate --quick"
"$BIN/hhml-validate" --quick

step "done"
echo "wheel smoke passed in $(($(date +%s) - START))s"
