"""Tests of ``hhml-train``: help, one-line usage errors with exit code 2, a short run, resume."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from hhml.cli.train import main
from hhml.ml.training import Trainer, load_checkpoint, read_metrics

#: A config with no keys: the schema defaults (without --config, hhml-train uses the quickstart).
SCHEMA_DEFAULTS = str(Path(__file__).parent / "data" / "schema_defaults.yaml")

SMALL = [
    "--config",
    SCHEMA_DEFAULTS,
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


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_usage_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hhml-train: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_documents_every_option_with_an_example() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for text in (
        "--config",
        "--resume",
        "--device",
        "--run-dir",
        "--seed",
        "OVERRIDES",
        "Examples:",
        "hhml-train --config configs/experiment/quickstart.yaml",
        "baseline",
        "130",
    ):
        assert text in result.output


def test_invalid_config_value(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("training:\n  total_steps: -5\n")
    run_dir = tmp_path / "run"
    result = invoke("--config", str(config), "--run-dir", str(run_dir))
    assert_usage_error(result, "training.total_steps = -5 is out of range", "bad.yaml")
    assert not run_dir.exists()


def test_unknown_override(tmp_path: Path) -> None:
    result = invoke(*SMALL, "training.total_stepz=5", "--run-dir", str(tmp_path / "run"))
    assert_usage_error(result, "'training.total_stepz'", "did you mean 'training.total_steps'")
    assert list(tmp_path.iterdir()) == []


def test_unknown_environment_is_caught_before_the_run_directory(tmp_path: Path) -> None:
    result = invoke(*SMALL, "env.id=NoSuchEnv-v0", "--run-dir", str(tmp_path / "run"))
    assert_usage_error(result, "env.id = 'NoSuchEnv-v0'")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_run_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke(*SMALL, "--run-dir", str(blocker / "run"))
    assert_usage_error(result, "cannot create run directory", "is not a directory")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_non_empty_run_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = invoke(*SMALL, "--run-dir", str(tmp_path))
    assert_usage_error(result, "already exists and is not empty", "--resume")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu(tmp_path: Path) -> None:
    result = invoke(*SMALL, "--device", "cuda", "--run-dir", str(tmp_path / "run"))
    assert_usage_error(result, "device 'cuda' was requested but CUDA is not available")
    assert list(tmp_path.iterdir()) == []


def test_invalid_device_string(tmp_path: Path) -> None:
    result = invoke(*SMALL, "--device", "tpu", "--run-dir", str(tmp_path / "run"))
    assert_usage_error(result, "training.device = 'tpu' is not valid")


def test_missing_config_file(tmp_path: Path) -> None:
    result = invoke("--config", str(tmp_path / "absent.yaml"))
    assert_usage_error(result, "absent.yaml: no such file")


def test_resume_errors(tmp_path: Path) -> None:
    assert_usage_error(invoke("--resume", str(tmp_path / "nope")), "no such run directory")
    assert_usage_error(
        invoke("--resume", str(tmp_path), "--config", "x.yaml"), "do not combine it with --config"
    )
    assert_usage_error(invoke("--resume", str(tmp_path)), "no config.yaml")


def test_short_run_prints_directory_and_summary_then_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = invoke(*SMALL, "--device", "cpu", "--seed", "3", "--run-dir", str(run_dir))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"run directory: {run_dir} (step 0)" in out.splitlines()[0]
    for label in ("baseline return", "first eval", "best eval", "final eval", "wall time"):
        assert label in out
    for name in ("random", "midpoint", "constant", "schedule"):
        assert f"{name} baseline" in out  # scored with the agent's budget (or skipped: why)
    assert "completed at step 200 of 200" in out
    assert "at step 100" in out and "vs baseline" in out
    assert load_checkpoint(run_dir / "model_last.pt")["config"]["training"]["seed"] == 3

    more = invoke("--resume", str(run_dir), "training.total_steps=300")
    assert more.exit_code == 0, more.output
    assert f"resuming: {run_dir} (step 200)" in more.stdout
    assert "completed at step 300 of 300" in more.stdout
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [(r["kind"], r["step"]) for r in records[-2:]] == [("eval", 300), ("baselines", 300)]
    assert [r["kind"] for r in records].count("baselines") == 1  # the session-200 one is gone
    refused = invoke("--resume", str(run_dir), "--seed", "4")
    assert_usage_error(refused, "cannot change 'training.seed'")


def test_ctrl_c_writes_a_checkpoint_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Trainer._step

    def step_then_interrupt(self: Trainer, snapshot: bool = False) -> None:
        original(self, snapshot)
        if self.state.step == 120:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Trainer, "_step", step_then_interrupt)
    run_dir = tmp_path / "run"
    result = invoke(*SMALL, "--device", "cpu", "--run-dir", str(run_dir))
    assert result.exit_code == 130, result.output
    assert "interrupted at step 120 of 200" in result.stdout
    assert f"continue with: hhml-train --resume {run_dir}" in result.stdout
    assert load_checkpoint(run_dir / "model_last.pt")["step"] == 120
