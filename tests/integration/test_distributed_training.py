"""``hhml-train --nproc 2``: two gloo ranks on loopback train one agent.

Documented expectation (docs/deployment/distributed.md): with the same seed and
the same number of ranks a run is reproducible record for record, and a run
resumed from its checkpoint with the same ``--nproc`` continues exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hhml.ml.training.metrics import TIME_PREFIX

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--config",
    str(ROOT / "configs/experiment/quickstart.yaml"),
    "env.num_envs=4",
    "agent.learning_starts=128",
    "agent.batch_size=32",
    "training.eval_every=256",
    "training.eval_episodes=1",
    "training.log_every=64",
    "training.checkpoint_every=256",
    "training.snapshot_every=0",
    "training.progress_bar=false",
    "training.tensorboard=false",
    "--seed",
    "3",
]


def _train(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "hhml.cli.train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )


def _records(run: Path) -> list[dict[str, Any]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if not k.startswith(TIME_PREFIX)}
        for line in lines
    ]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("ddp") / "full"
    done = _train(*TINY, "training.total_steps=512", "--nproc", "2", "--run-dir", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run directory:") == 1  # rank 0 alone reports
    return run


def test_two_ranks_write_one_run_directory(full_run: Path) -> None:
    assert sorted(p.name for p in full_run.iterdir()) == [
        "config.yaml",
        "metrics.json",
        "metrics.jsonl",
        "model_best.pt",
        "model_last.pt",
        "snapshots",
    ]
    summary = json.loads((full_run / "metrics.json").read_text())
    assert summary["status"] == "completed"
    assert summary["world_size"] == 2
    assert summary["step"] == 512
    records = _records(full_run)
    train = [r for r in records if r["kind"] == "train"]
    # 2 ranks x 4 envs = 8 env steps per iteration; a record every 64 steps.
    assert [r["step"] for r in train] == list(range(64, 513, 64))
    assert all(r["dist/world_size"] == 2 for r in train)
    ckpt = torch.load(full_run / "model_last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["ranks"]) == 1
    # Rank 1 stepped its own envs (other seeds) and filled its own replay buffer ...
    assert not torch.equal(ckpt["obs"], ckpt["ranks"][0]["obs"])
    replay0, replay1 = ckpt["agent"]["replay"], ckpt["ranks"][0]["agent"]["replay"]
    assert int(replay0["size"]) == int(replay1["size"]) == 256
    # ... yet both ranks hold the same weights: one agent.
    for name, tensor in ckpt["agent"]["networks"]["actor"].items():
        assert torch.equal(tensor, ckpt["ranks"][0]["agent"]["networks"]["actor"][name])


def test_same_seed_same_ranks_same_result_and_exact_resume(full_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "resumed"
    first = _train(*TINY, "training.total_steps=256", "--nproc", "2", "--run-dir", str(run))
    assert first.returncode == 0, first.stderr[-3000:]
    second = _train("--resume", str(run), "training.total_steps=512", "--nproc", "2")
    assert second.returncode == 0, second.stderr[-3000:]
    assert _records(run) == _records(full_run)
    a = torch.load(run / "model_last.pt", weights_only=True)["agent"]["networks"]
    b = torch.load(full_run / "model_last.pt", weights_only=True)["agent"]["networks"]
    for net in ("actor", "critic"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name}"


def test_resume_with_another_number_of_ranks_is_refused(full_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(full_run, copy)
    done = _train("--resume", str(copy), "training.total_steps=1024")
    assert done.returncode == 2
    assert "written by 2 rank(s); resume it with the same number (--nproc 2), not 1" in (
        done.stderr
    )


def test_launch_errors_are_reported_before_any_rank_starts(tmp_path: Path) -> None:
    done = _train("--config", str(tmp_path / "missing.yaml"), "--nproc", "2")
    assert done.returncode == 2
    assert "missing.yaml: no such file" in done.stderr
    assert "starting 2 ranks" not in done.stderr
    done = _train(*TINY, "--nproc", "2", "--dashboard")
    assert done.returncode == 2
    assert "--dashboard cannot be combined with --nproc" in done.stderr
    if torch.cuda.device_count() < 2:
        done = _train(*TINY, "--nproc", "2", "--device", "cuda", "--run-dir", str(tmp_path / "r"))
        assert done.returncode == 2
        assert "starting 2 ranks" not in done.stderr and not (tmp_path / "r").exists()


def _sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    tiny = "\n".join(f"  - {o}" for o in TINY[2:-2] if "=" in o)
    path.write_text(
        f"name: ens\nconfig: {ROOT / 'configs/experiment/quickstart.yaml'}\n"
        f"overrides:\n{tiny}\n  - training.total_steps=128\n  - training.eval_every=64\n"
        "seeds: [0, 1]\n"
    )
    return path


def test_sweep_on_two_ranks_equals_one_process_and_resumes(tmp_path: Path) -> None:
    sweep = _sweep_file(tmp_path)
    results = {}
    for nproc in ("1", "2"):
        root = tmp_path / f"runs{nproc}"
        done = _train("--sweep", str(sweep), f"training.run_root={root}", "--nproc", nproc)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads((root / "ens" / "sweep_summary.json").read_text())
        results[nproc] = summary
        assert [t["trial"] for t in summary["trials"]] == ["000_seed-0", "001_seed-1"]
        assert all(t["status"] == "completed" for t in summary["trials"])
    # Same seeds => same results, whichever rank ran a trial.
    for a, b in zip(results["1"]["trials"], results["2"]["trials"], strict=True):
        assert (a["final_return"], a["best_return"]) == (b["final_return"], b["best_return"])
    (group,) = results["2"]["groups"]
    finals = [t["final_return"] for t in results["2"]["trials"]]
    assert group["final_return"]["mean"] == pytest.approx(sum(finals) / 2)
    # Running it again skips the completed trials.
    root = tmp_path / "runs1"
    before = (root / "ens" / "000_seed-0" / "metrics.jsonl").read_text()
    again = _train("--sweep", str(sweep), f"training.run_root={root}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (root / "ens" / "000_seed-0" / "metrics.jsonl").read_text() == before


def test_ctrl_c_stops_all_ranks_at_one_step_with_a_resumable_checkpoint(tmp_path: Path) -> None:
    import signal
    import time

    run = tmp_path / "interrupted"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "hhml.cli.train", *TINY, "training.total_steps=100000"]
    proc = subprocess.Popen(
        [*cmd, "--nproc", "2", "--run-dir", str(run)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until learning has started
        if (run / "model_last.pt").is_file():
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # the launcher forwards it to both ranks
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "continue with: hhml-train --resume" in out and "--nproc 2" in out
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "interrupted"
    ckpt = torch.load(run / "model_last.pt", weights_only=True)
    assert ckpt["step"] == summary["step"] < 100000
    assert ckpt["trainer"]["step"] == ckpt["ranks"][0]["trainer"]["step"] == ckpt["step"]
    done = _train("--resume", str(run), f"training.total_steps={ckpt['step'] + 64}", "--nproc", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
