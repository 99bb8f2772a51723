"""A training run killed with SIGKILL and resumed equals an uninterrupted run (CPU, TD3).

Three ``hhml-train`` processes: an uninterrupted reference run, a run killed with
SIGKILL once it has written a checkpoint *and* metrics lines past it (so the
resume must drop them), and ``hhml-train --resume`` of the killed run. Every
record of ``metrics.jsonl`` (apart from wall-clock ``time/`` keys), the summary's
final values and the final networks must be identical.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hhml.ml.training import load_checkpoint, read_metrics
from hhml.ml.training.metrics import TIME_PREFIX

pytestmark = pytest.mark.integration

OVERRIDES = [
    "env.id=Pendulum-v1",
    "agent.algorithm=td3",
    "agent.hidden_size=16",
    "agent.learning_starts=100",
    "agent.batch_size=32",
    "agent.buffer_size=2000",
    "training.total_steps=600",
    "training.eval_every=200",
    "training.eval_episodes=1",
    "training.log_every=50",
    "training.checkpoint_every=200",
    "training.device=cpu",
    "training.progress_bar=false",
    "training.tensorboard=true",
    "training.torch_threads=1",
    "training.seed=7",
]
TIMEOUT_S = 240.0


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hhml.cli.train", *args]


def without_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIME_PREFIX)} for r in records]


def kill_after_checkpoint(process: subprocess.Popen[bytes], run_dir: Path) -> int:
    """SIGKILL ``process`` once model_last.pt exists and a later metrics line was written."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = run_dir / "model_last.pt"
        if checkpoint.is_file():
            step = load_checkpoint(checkpoint)["step"]
            if any(r["step"] > step for r in read_metrics(run_dir / "metrics.jsonl")):
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return int(step)
        time.sleep(0.02)
    raise AssertionError(
        f"the run ended (rc {process.poll()}) before it could be killed mid-way; "
        "raise training.total_steps"
    )


def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = subprocess.Popen(
        command(*OVERRIDES, "--run-dir", str(reference_dir)),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    killed = subprocess.Popen(
        command(*OVERRIDES, "--run-dir", str(killed_dir)),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        checkpoint_step = kill_after_checkpoint(killed, killed_dir)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL
    assert 0 < checkpoint_step < 600
    resumed = subprocess.run(
        command("--resume", str(killed_dir)),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming: {killed_dir} (step {checkpoint_step})" in resumed.stdout
    out, _ = reference.communicate(timeout=TIMEOUT_S)
    assert reference.returncode == 0, out.decode()

    expected = without_time(read_metrics(reference_dir / "metrics.jsonl"))
    actual = without_time(read_metrics(killed_dir / "metrics.jsonl"))
    assert [(r["kind"], r["step"]) for r in actual] == [(r["kind"], r["step"]) for r in expected]
    assert actual == expected

    summary = json.loads((killed_dir / "metrics.json").read_text())
    reference_summary = json.loads((reference_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["sessions"] == 2
    for key in ("final", "evals", "first_eval", "best_eval", "final_eval", "baseline_return"):
        assert summary[key] == reference_summary[key], key
    assert summary["final"]["step"] == 600

    a = load_checkpoint(killed_dir / "model_last.pt")["agent"]
    b = load_checkpoint(reference_dir / "model_last.pt")["agent"]
    for name, tensors in b["networks"].items():
        for key, tensor in tensors.items():
            assert torch.equal(a["networks"][name][key], tensor), f"{name}.{key}"


MOBIUS = [
    "env=mobius",
    "lattice=env",
    "simulation=env",
    "env.num_envs=2",
    "env.horizon=10",
    "agent.hidden_size=16",
    "agent.learning_starts=20",
    "agent.batch_size=8",
    "agent.buffer_size=500",
    "training.eval_every=40",
    "training.eval_episodes=1",
    "training.log_every=20",
    "training.checkpoint_every=40",
    "training.snapshot_every=40",
    "training.device=cpu",
    "training.progress_bar=false",
    "training.tensorboard=false",
    "training.torch_threads=1",
]


@pytest.mark.slow
def test_mobius_run_resumes_exactly(tmp_path: Path) -> None:
    """The Möbius env (state_dict path, snapshots, reward terms, 23 parameters) resumes exactly."""
    from hhml.config import load_config
    from hhml.ml.training import Trainer

    root = Path(__file__).resolve().parents[2] / "configs"

    def train(run_dir: Path, steps: int) -> None:
        cfg = load_config(None, [*MOBIUS, f"training.total_steps={steps}"], config_root=root)
        trainer = Trainer.create(cfg, run_dir=run_dir)
        try:
            trainer.train()
        finally:
            trainer.close()

    train(tmp_path / "full", 80)
    train(tmp_path / "half", 40)
    (tmp_path / "half" / ".model_last.pt.abc.tmp").write_bytes(b"torn")
    trainer = Trainer.resume(tmp_path / "half", ["training.total_steps=80"])
    try:
        trainer.train()
    finally:
        trainer.close()
    assert not list((tmp_path / "half").glob(".*.tmp"))
    expected = without_time(read_metrics(tmp_path / "full" / "metrics.jsonl"))
    assert without_time(read_metrics(tmp_path / "half" / "metrics.jsonl")) == expected
    last = [r for r in expected if r["kind"] == "train"][-1]
    assert sum(key.startswith("params/") for key in last) == 23
    assert "vortex/density" in last and any(k.startswith("reward/") for k in last)
    assert load_checkpoint(tmp_path / "half" / "model_last.pt")["env"]["kind"] == "state_dict"
    snapshots = sorted(p.name for p in (tmp_path / "half" / "snapshots").iterdir())
    assert snapshots == ["step_0000000040.h5", "step_0000000080.h5"]
    # the snapshot written after the resume holds the uninterrupted run's fields, bit for bit
    full, half = (tmp_path / run / "snapshots" / "step_0000000080.h5" for run in ("full", "half"))
    want, got = _datasets(full), _datasets(half)
    assert got.keys() == want.keys() and any("psi" in name for name in want), sorted(want)
    for name, value in want.items():
        assert np.array_equal(got[name], value, equal_nan=value.dtype.kind in "fc"), name


def _datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by its path (attributes left out)."""
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out
