"""Tests of ``hhml-monitor`` and ``hhml-train --dashboard``: one-line errors with exit code 2,
the non-loopback warning, serving until SIGINT, a short training run with the dashboard."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from hhml.cli.monitor import main as monitor_main
from hhml.cli.monitor import warn_if_exposed
from hhml.cli.train import main as train_main

SMALL_TRAINING = [
    "env.id=Pendulum-v1",
    "agent.hidden_size=16",
    "agent.learning_starts=100",
    "agent.batch_size=16",
    "agent.buffer_size=1000",
    "training.total_steps=200",
    "training.eval_every=100",
    "training.eval_episodes=1",
    "training.log_every=100",
    "training.checkpoint_every=100",
    "training.progress_bar=false",
    "training.tensorboard=false",
    "training.torch_threads=1",
]


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield int(sock.getsockname()[1])
    sock.close()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    root.mkdir()
    (root / "config.yaml").write_text("training:\n  total_steps: 10\n", encoding="utf-8")
    line = {"kind": "train", "step": 5, "reward/total": 0.5}
    (root / "metrics.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    return root


def assert_usage_error(result: Result, prog: str, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{prog}: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_explains_the_dashboard_and_the_defaults() -> None:
    result = CliRunner().invoke(monitor_main, ["--help"])
    assert result.exit_code == 0
    for text in ("RUN_DIR", "--host", "127.0.0.1", "--port", "8765", "warning", "Examples:"):
        assert text in result.output
    train_help = CliRunner().invoke(train_main, ["--help"]).output
    for text in ("--dashboard", "--dashboard-port", "--dashboard-host", "hhml-monitor"):
        assert text in train_help


def test_missing_and_non_run_directories_exit_2_with_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(monitor_main, [str(tmp_path / "nope")])
    assert_usage_error(result, "hhml-monitor", "nope", "no such directory")
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(monitor_main, [str(tmp_path / "empty")])
    assert_usage_error(result, "hhml-monitor", "empty", "not a run directory")
    assert CliRunner().invoke(monitor_main, []).exit_code == 2  # RUN_DIR is required


def test_a_busy_port_exits_2(run_dir: Path, busy_port: int) -> None:
    result = CliRunner().invoke(monitor_main, [str(run_dir), "--port", str(busy_port)])
    assert_usage_error(result, "hhml-monitor", f"127.0.0.1:{busy_port}", "--port")


def test_non_loopback_hosts_print_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    warn_if_exposed("127.0.0.1", "hhml-monitor")
    assert capsys.readouterr().err == ""
    warn_if_exposed("0.0.0.0", "hhml-monitor")
    err = capsys.readouterr().err
    assert err.startswith("hhml-monitor: warning: listening on 0.0.0.0")


def test_monitor_serves_until_sigint(run_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hhml.cli.monitor", str(run_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", first)
        assert match, first
        runs = httpx.get(match.group(1) + "api/runs", timeout=10).json()["runs"]
        assert [(r["name"], r["status"]) for r in runs] == [("run", "running")]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "hhml-monitor: stopped" in out


def test_train_with_a_busy_dashboard_port_writes_nothing(tmp_path: Path, busy_port: int) -> None:
    target = tmp_path / "run"
    result = CliRunner().invoke(
        train_main,
        [
            *SMALL_TRAINING,
            "--run-dir",
            str(target),
            "--dashboard",
            "--dashboard-port",
            str(busy_port),
        ],
    )
    assert_usage_error(result, "hhml-train", "--dashboard", str(busy_port))
    assert not target.exists()


def test_train_serves_the_dashboard_while_training(tmp_path: Path) -> None:
    target = tmp_path / "run"
    result = CliRunner().invoke(
        train_main,
        [*SMALL_TRAINING, "--run-dir", str(target), "--dashboard", "--dashboard-port", "0"],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^dashboard: http://127\.0\.0\.1:\d+/$", result.output, re.MULTILINE)
    assert f"dashboard stopped; browse the run with: hhml-monitor {target}" in result.output
    assert (target / "metrics.json").is_file()
