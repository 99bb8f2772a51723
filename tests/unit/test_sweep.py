"""Sweep files: expansion into trials, validation messages, and the summary statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hhml.errors import ConfigError
from hhml.ml.training.sweep import format_summary, load_sweep, summarise_trials

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(body)
    return path


BASE = f"config: {ROOT / 'configs/experiment/quickstart.yaml'}\n"


def test_grid_times_seeds_expands_in_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: s\n" + BASE + "overrides: [training.total_steps=100]\n"
        "grid:\n  agent.algorithm: [td3, sac]\n  env.task: [target_density, persistence]\n"
        "seeds: [4, 9]\n",
    )
    spec = load_sweep(path, ["training.run_root=/tmp/x"])
    assert spec.root == Path("/tmp/x/s")
    assert len(spec.trials) == 8
    first, last = spec.trials[0], spec.trials[-1]
    assert first.name == "000_algorithm-td3_task-target_density_seed-4"
    assert last.name == "007_algorithm-sac_task-persistence_seed-9"
    assert last.cfg.agent.algorithm == "sac" and last.cfg.env.task == "persistence"
    assert last.cfg.training.seed == 9 and last.cfg.training.total_steps == 100
    assert last.cfg.training.run_name == last.name
    assert [t.seed for t in spec.trials] == [4, 9] * 4


def test_shipped_sweep_files_load() -> None:
    for path in sorted((ROOT / "configs/sweep").glob("*.yaml")):
        spec = load_sweep(path)
        assert spec.trials, path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: s\n" + BASE + "seeds: [0]\nextra: 1\n", r"unknown key\(s\) \['extra'\]"),
        ("name: a/b\n" + BASE + "seeds: [0]\n", r"'name' must be a directory name"),
        ("name: s\nconfig: nope.yaml\nseeds: [0]\n", r"'config' 'nope.yaml' does not exist"),
        ("name: s\n" + BASE + "seeds: []\n", r"'seeds' must be a non-empty list"),
        ("name: s\n" + BASE + "seeds: [1, 1]\n", r"distinct integers"),
        ("name: s\n" + BASE + "seeds: [0]\ngrid:\n  algorithm: [td3]\n", r"'section.key'"),
        ("name: s\n" + BASE + "seeds: [0]\ngrid:\n  agent.algorithm: []\n", r"non-empty list"),
        (
            "name: s\n" + BASE + "seeds: [0]\ngrid:\n  agent.algorithm: [td3, ppo]\n",
            r"trial 001_algorithm-ppo_seed-0: .*agent.algorithm",
        ),
        (
            "name: s\n" + BASE + "seeds: [0]\noverrides: [training.seed=3]\n",
            r"sets training.seed and run_name itself",
        ),
    ],
)
def test_invalid_sweep_files_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError, match=message) as info:
        load_sweep(path)
    assert str(path) in str(info.value)


def test_missing_sweep_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_sweep(tmp_path / "none.yaml")


def test_summary_statistics_match_scipy() -> None:
    finals = [3.0, 5.5, 10.25]
    rows = [
        {
            "trial": f"t{i}",
            "index": i,
            "seed": i,
            "point": {"agent.algorithm": "td3"},
            "status": "completed",
            "step": 10,
            "baseline_return": 1.0,
            "final_return": value,
            "best_return": value + 1,
            "steps_per_sec": 5.0,
            "wall_time_s": 2.0,
        }
        for i, value in enumerate(finals)
    ]
    rows.append({**rows[0], "trial": "t3", "index": 3, "status": "interrupted"})
    (group,) = summarise_trials(rows)
    assert group["trials"] == 4 and group["completed"] == 3
    final = group["final_return"]
    assert final["n"] == 3
    assert final["mean"] == pytest.approx(np.mean(finals))
    assert final["std"] == pytest.approx(np.std(finals, ddof=1))
    assert final["sem"] == pytest.approx(stats.sem(finals))
    text = format_summary("demo", rows, [group])
    assert "| agent.algorithm=td3 | 3/4 | 6.25 |" in text
    assert "| t3 | 0 | interrupted |" in text


def test_cli_sweep_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hhml.cli.train import main

    runner = CliRunner()
    missing = runner.invoke(main, ["--sweep", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2
    assert "none.yaml: no such file" in missing.output
    sweep = ROOT / "configs/sweep/tiny.yaml"
    mixed = runner.invoke(main, ["--sweep", str(sweep), "--seed", "3"])
    assert mixed.exit_code == 2
    assert "do not combine it with --config, --resume, --run-dir, --seed" in mixed.output
    with runner.isolated_filesystem(temp_dir=tmp_path):
        bad = runner.invoke(main, ["--sweep", str(sweep), "agent.nonsense=1"])
        assert bad.exit_code == 2
        assert "trial 000_algorithm-td3_seed-0" in bad.output and "nonsense" in bad.output
        assert not Path("results").exists()  # validated before any trial starts


def test_trial_killed_before_its_first_checkpoint_does_not_block_the_sweep(
    tmp_path: Path,
) -> None:
    """A trial directory without model_last.pt (killed before its first checkpoint) is
    restarted from step 0, also when its config.yaml came from an older sweep file."""
    import dataclasses
    import json

    from hhml.config.loader import dump_config
    from hhml.ml.training.sweep import run_sweep

    base = tmp_path / "base.yaml"
    base.write_text(
        "env: {id: Pendulum-v1}\n"
        "agent: {hidden_size: 16, learning_starts: 50, batch_size: 16, buffer_size: 1000}\n"
        "training: {total_steps: 200, eval_every: 100, eval_episodes: 1, log_every: 50,\n"
        "  checkpoint_every: 100, device: cpu, progress_bar: false, tensorboard: false,\n"
        f"  torch_threads: 1, baselines: none, run_root: {tmp_path / 'runs'}}}\n"
    )
    path = _write(tmp_path, f"name: s\nconfig: {base}\nseeds: [0, 1]\n")
    spec = load_sweep(path)
    first, second = (spec.root / t.name for t in spec.trials)
    # trial 0: killed after a few records, before model_last.pt
    first.mkdir(parents=True)
    (first / "config.yaml").write_text(dump_config(spec.trials[0].cfg))
    (first / "metrics.jsonl").write_text('{"kind": "train", "step": 50}\n')
    (first / "metrics.json").write_text('{"status": "running", "step": 0}\n')
    # trial 1: its config.yaml is from an older version of the sweep file
    second.mkdir(parents=True)
    cfg = spec.trials[1].cfg
    older = dataclasses.replace(cfg, training=cfg.training.replace(total_steps=100))
    (second / "config.yaml").write_text(dump_config(older))
    rows = run_sweep(spec)
    assert rows is not None
    assert [r["status"] for r in rows] == ["completed", "completed"]
    for run_dir, trial in zip((first, second), spec.trials, strict=True):
        assert (run_dir / "model_last.pt").is_file()
        assert (run_dir / "config.yaml").read_text() == dump_config(trial.cfg)
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
        assert steps[0] == 0 and steps == sorted(steps)  # restarted from step 0
