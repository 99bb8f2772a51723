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
