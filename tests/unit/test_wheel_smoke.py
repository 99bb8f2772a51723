"""What a user of the installed package sees outside a terminal.

* ``.ci/wheel_smoke.sh`` (slow; ``make wheel-check``): the wheel alone in a fresh venv,
  ``hhml-train --config quickstart``, a bare ``hhml-train``, ``hhml-analyze`` and
  ``hhml-validate --quick`` run from an empty directory that is also ``HOME``.
* ``hhml-analyze`` in a pipe or log file (``hhml-analyze RUN | cat``, CI): plain progress
  lines, never a carriage return; a tqdm bar only on a terminal; nothing with ``-q`` or
  ``--no-progress`` — the policy of ``hhml-train``.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tiny_runs import TINY_MOBIUS_RUN

from hhml.analysis.report import build_report
from hhml.cli.analyze import main as analyze_main
from hhml.cli.train import main as train_main
from hhml.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
#: The sections of a report of a field snapshot alone (builder.build_report): the snapshot
#: table, the point pattern of its vortices and the field correlations.
SNAPSHOT_SECTIONS = 3
#: What hhml-analyze prints on stdout (the default --format md, and report.json always).
REPORT_FILES = ("report.md", "report.json")
LINE = re.compile(r"hhml-analyze: section (\d+)/(\d+) \((\d+) %\), \d+ s(, eta \d+ s)?")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = CliRunner().invoke(
        train_main, [*TINY_MOBIUS_RUN, "--device", "cpu", "--run-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def snapshot(run_dir: Path) -> Path:
    return sorted((run_dir / "snapshots").iterdir())[-1]


def test_analyze_in_a_pipe_writes_plain_lines_and_no_carriage_return(
    run_dir: Path, tmp_path: Path
) -> None:
    """``hhml-analyze RUN | cat``: stdout and stderr are pipes, not terminals."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "hhml.cli.analyze", str(run_dir), "--out", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stdout + done.stderr
    assert done.stdout.splitlines() == [str(tmp_path / "a" / f) for f in REPORT_FILES]
    # a report of seconds: only the last line (the next would come after 30 s)
    last = LINE.fullmatch(done.stderr.splitlines()[-1])
    assert last is not None, done.stderr
    assert last.group(1) == last.group(2) and last.group(3) == "100"


def test_plain_lines_count_the_sections(snapshot: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    build_report(snapshot, tmp_path / "r", progress_interval_s=1e-9, progress_stream=out)
    text = out.getvalue()
    assert "\r" not in text
    lines = [LINE.fullmatch(line) for line in text.splitlines()]
    assert all(lines), text
    # one line per section (every interval has passed), each with its percentage
    n = SNAPSHOT_SECTIONS
    assert [(m.group(1), m.group(2), m.group(3)) for m in lines if m] == [
        (str(k), str(n), str(100 * k // n)) for k in range(1, n + 1)
    ]


def test_a_terminal_gets_the_tqdm_bar(snapshot: Path, tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    build_report(snapshot, tmp_path / "r", progress_stream=out)
    assert "\r" in out.getvalue()
    assert f"{SNAPSHOT_SECTIONS}/{SNAPSHOT_SECTIONS}" in out.getvalue()
    assert "hhml-analyze: section" not in out.getvalue()


@pytest.mark.parametrize("flag", ["-q", "--no-progress"])
def test_quiet_and_no_progress_print_no_progress(flag: str, snapshot: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(analyze_main, [flag, str(snapshot), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines() == [str(out / f) for f in REPORT_FILES]


def test_default_cli_without_a_terminal_prints_the_last_line(
    snapshot: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(analyze_main, [str(snapshot), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    n = SNAPSHOT_SECTIONS
    assert re.fullmatch(rf"hhml-analyze: section {n}/{n} \(100 %\), \d+ s\n", result.stderr)


def test_a_non_positive_progress_interval_is_refused(snapshot: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"progress_interval_s = 0 is invalid"):
        build_report(snapshot, tmp_path / "r", progress_interval_s=0)
    assert not (tmp_path / "r").exists()  # refused before anything is written


@pytest.mark.slow
def test_the_wheel_alone_trains_analyses_and_validates() -> None:
    """``.ci/wheel_smoke.sh`` end to end (2-5 min; compiles the C++ kernels on its first
    run into ~/.cache/hhml-wheel-smoke, a few minutes more)."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "VENV": str(Path(sys.executable).parents[1]),
    }
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "wheel_smoke.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        env=env,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "wheel smoke passed in " in done.stdout
