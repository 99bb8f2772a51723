"""One vocabulary for the ``hhml-*`` commands: help, version, verbosity, progress, exit codes.

Every command answers ``-h``/``--help`` (with its exit codes) and ``--version``, accepts
``-q``/``-v``/``--no-progress``, and shows its help without importing torch. Progress is a
tqdm bar on a terminal only: elsewhere (CliRunner, a log file) :class:`ProgressBar` prints
a plain line at most every 30 s and never a carriage return.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from hhml import __version__
from hhml.cli import (
    analyze,
    baselines,
    common,
    evaluate,
    monitor,
    optimize,
    train,
    validate,
)
from hhml.errors import ConfigError
from hhml.ml.training.metrics import ProgressBar

COMMANDS: dict[str, Any] = {
    "hhml-train": train,
    "hhml-analyze": analyze,
    "hhml-validate": validate,
    "hhml-monitor": monitor,
    "hhml-baselines": baselines,
    "hhml-evaluate": evaluate,
    "hhml-optimize": optimize,
}
PROGS = sorted(COMMANDS)

#: A Pendulum run of a few seconds (one evaluation at step 100).
#: A config with no keys: the schema defaults (without --config, hhml-train uses the quickstart).
SCHEMA_DEFAULTS = str(Path(__file__).parent / "data" / "schema_defaults.yaml")

SMALL = [
    "--config",
    SCHEMA_DEFAULTS,
    "env.id=Pendulum-v1",
    "agent.hidden_size=16",
    "agent.learning_starts=50",
    "agent.batch_size=16",
    "agent.buffer_size=1000",
    "training.total_steps=100",
    "training.eval_every=100",
    "training.eval_episodes=1",
    "training.log_every=100",
    "training.checkpoint_every=100",
    "training.tensorboard=false",
    "training.torch_threads=1",
    "--device",
    "cpu",
]


def invoke(prog: str, *args: str) -> Result:
    command: click.Command = COMMANDS[prog].main
    return CliRunner().invoke(command, list(args), prog_name=prog)


def usage_args(prog: str, tmp_path: Path) -> list[str]:
    """Arguments with which each command stops at once with its own one-line error."""
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  eval_episodes: 1\n")
    return {
        "hhml-train": ["--config", str(tmp_path / "absent.yaml")],
        "hhml-analyze": [str(tmp_path / "absent")],
        "hhml-validate": ["--only", "null-model", "--json", str(tmp_path / "no" / "x.json")],
        "hhml-monitor": [str(tmp_path / "absent")],
        "hhml-baselines": [str(config), "--only", ","],
        "hhml-evaluate": [str(tmp_path / "absent")],
        "hhml-optimize": [str(tmp_path / "absent.yaml"), "--trials", "1"],
    }[prog]


# ------------------------------------------------------------------------------------- help


@pytest.mark.parametrize("prog", PROGS)
def test_h_and_help_print_the_same_usage_with_the_exit_codes(prog: str) -> None:
    short, long = invoke(prog, "-h"), invoke(prog, "--help")
    assert short.exit_code == 0 and long.exit_code == 0, short.output + long.output
    assert short.output == long.output
    assert long.output.startswith(f"Usage: {prog} ")
    assert "Exit codes: 0 " in long.output and " 2 " in long.output
    for option in ("-q, --quiet", "-v, --verbose", "--no-progress", "--version", "-h, --help"):
        assert option in long.output
    if prog == "hhml-train":
        assert "130 interrupted" in long.output


@pytest.mark.parametrize("prog", PROGS)
def test_version_prints_the_package_version(prog: str) -> None:
    result = invoke(prog, "--version")
    assert result.exit_code == 0
    assert result.output == f"{prog}, version {__version__}\n"


@pytest.mark.parametrize("prog", PROGS)
def test_help_does_not_import_torch(prog: str) -> None:
    module = COMMANDS[prog].__name__
    code = (
        "import sys\n"
        f"from {module} import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch loaded: False"), done.stdout[-300:]


def test_help_texts_agree_with_the_registries() -> None:
    from hhml.ml.training import RESUMABLE_KEYS
    from hhml.validation.checks import GROUPS

    assert train._RESUMABLE_KEYS_HELP == RESUMABLE_KEYS
    assert tuple(GROUPS) == validate._GROUP_NAMES


# -------------------------------------------------------------------------------- verbosity


@pytest.mark.parametrize("prog", PROGS)
@pytest.mark.parametrize("flag", ["-q", "--quiet", "-v", "--verbose", "--no-progress"])
def test_verbosity_flags_are_accepted(prog: str, flag: str, tmp_path: Path) -> None:
    handlers = list(logging.getLogger("hhml").handlers)
    result = invoke(prog, flag, *usage_args(prog, tmp_path))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if not line.startswith("DEBUG ")]
    assert len(errors) == 1 and errors[0].startswith(f"{prog}: error: "), result.stderr
    debug = f"DEBUG hhml.cli: {prog} {__version__}, python "
    assert (debug in result.stderr) == (flag in ("-v", "--verbose"))
    assert logging.getLogger("hhml").handlers == handlers  # undone when the command ends


@pytest.mark.parametrize("prog", PROGS)
def test_quiet_and_verbose_exclude_each_other(prog: str, tmp_path: Path) -> None:
    result = invoke(prog, "-q", "-v", *usage_args(prog, tmp_path))
    assert result.exit_code == 2
    assert "-q/--quiet and -v/--verbose exclude each other" in result.output


def test_validate_quiet_prints_only_the_verdict() -> None:
    result = invoke("hhml-validate", "-q", "--quick", "--only", "null-model")
    assert result.exit_code == 0, result.output
    assert result.output == "1/1 checks passed\n"


def test_configure_logging_levels_and_undo(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("hhml")
    before = (logger.level, list(logger.handlers))
    undo = common.configure_logging(1)
    assert logger.level == logging.DEBUG and len(logger.handlers) == len(before[1]) + 1
    logging.getLogger("hhml.some.module").debug("a debug line %d", 7)
    assert capsys.readouterr().err == "DEBUG hhml.some.module: a debug line 7\n"
    undo()
    assert (logger.level, logger.handlers) == before
    undo = common.configure_logging(-1)
    assert logger.level == logging.WARNING and logger.handlers == before[1]
    undo()
    assert logger.level == before[0]
    with pytest.raises(ConfigError, match="verbosity 2 is invalid"):
        common.configure_logging(2)


def test_fail_prints_one_line_and_exits_with_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        common.fail("hhml-x", "first line\n    second  line\n", common.EXIT_ERROR)
    assert exc.value.code == 1
    assert capsys.readouterr().err == "hhml-x: error: first line second  line\n"
    assert (common.EXIT_OK, common.EXIT_USAGE, common.EXIT_INTERRUPTED) == (0, 2, 130)
    assert common.exit_codes_epilog({0: "done", 2: "bad"}) == "Exit codes: 0 done, 2 bad."


# ---------------------------------------------------------------------------------- progress


class _Clock:
    """A settable monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_without_a_terminal() -> None:
    clock, out = _Clock(), io.StringIO()
    bar = ProgressBar(4000, 0, True, stream=out, clock=clock)
    assert not bar.is_bar
    bar.write({"episode/return_mean": -812.345678, "step": 0})
    for _ in range(29):  # 29 s: no line before the 30 s interval
        clock.now += 1.0
        bar.advance(40)
    assert out.getvalue() == ""
    clock.now += 1.63
    bar.advance(40)
    # 1200 steps in 30.63 s: 39.18 steps/s; eta 2800 / 39.18 = 71.47 s -> 1 min 11 s
    assert out.getvalue() == "step 1200/4000 (30 %), 39.18 steps/s, eta 1 min 11 s, reward -812.3\n"
    clock.now += 10.0
    bar.advance(100)  # 10 s after the last line: none
    bar.close()  # the last line, then nothing more
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("step 1300/4000 (32 %), ")
    assert "\r" not in out.getvalue()


def test_progress_of_a_resumed_run_and_a_disabled_bar() -> None:
    clock, out = _Clock(), io.StringIO()
    bar = ProgressBar(4000, 2000, True, stream=out, clock=clock, interval_s=5.0)
    clock.now += 12.63
    bar.advance(1200)  # rate from the steps of this session: 1200 / 12.63 s = 95.01 /s
    assert out.getvalue() == "step 3200/4000 (80 %), 95.01 steps/s, eta 8 s\n"
    off = io.StringIO()
    disabled = ProgressBar(10, 0, False, stream=off, clock=clock, interval_s=1.0)
    clock.now += 5.0
    disabled.advance(10)
    disabled.close()
    assert off.getvalue() == ""
    with pytest.raises(ConfigError, match="interval_s = 0"):
        ProgressBar(10, 0, True, interval_s=0)


def test_progress_is_a_tqdm_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = ProgressBar(100, 0, True, stream=out)
    assert bar.is_bar
    bar.advance(50)
    bar.write({"vortex/density": 0.25})
    bar.close()
    assert "\r" in out.getvalue() and "50/100" in out.getvalue()


def test_training_without_a_terminal_writes_no_carriage_returns(tmp_path: Path) -> None:
    result = invoke("hhml-train", *SMALL, "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) <= 3, result.stderr  # a run of seconds: the last progress line only
    assert lines[-1].startswith("step 100/100 (100 %), ")
    assert result.stdout.startswith(f"run directory: {tmp_path / 'run'} (step 0)\n")


def test_training_quiet_prints_only_the_summary(tmp_path: Path) -> None:
    result = invoke("hhml-train", "-q", *SMALL, "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("run directory  ")  # the table's first row
    assert "completed at step 100 of 100" in result.stdout
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "progress_bar: false" in saved  # -q implies --no-progress


@pytest.mark.parametrize(
    ("flags", "shown"),
    [([], True), (["--no-progress"], False), (["-q"], False)],
)
def test_analyze_progress_follows_no_progress_and_quiet(
    flags: list[str], shown: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether hhml-analyze reports progress at all; bar on a terminal vs plain lines in
    a pipe is build_report's choice (tests/unit/test_wheel_smoke.py)."""
    import hhml.analysis.report as report

    seen: dict[str, Any] = {}

    def fake_build(source: Path, out: Path, **kwargs: Any) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(report, "build_report", fake_build)
    monkeypatch.setattr(report, "write_report", lambda doc, out, fmts: [out / "report.md"])
    result = invoke("hhml-analyze", *flags, str(tmp_path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert seen["progress"] is shown
