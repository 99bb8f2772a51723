"""Open-loop baselines: on toy envs whose optimum is a known constant or schedule the
CMA-ES search finds it within its env-step budget, budgets are counted exactly, and the
scores use the trainer's evaluation protocol with Student-t intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from hhml.cli.baselines import main as baselines_cli
from hhml.config import load_config
from hhml.errors import ConfigError
from hhml.ml.baselines import SchedulePolicy, run_baselines, search_open_loop
from hhml.ml.baselines.suite import to_box
from hhml.ml.training.evaluation import mean_interval

HORIZON = 8
OPTIMUM = np.array([0.3, -0.6])  # the constant toy's best action
FIRST, SECOND = np.array([0.5, -0.5]), np.array([-0.5, 0.5])  # the schedule toy's halves


class _Toy(gym.Env[np.ndarray, np.ndarray]):
    """Reward −|a − a*(t)|² per step; ``a*`` constant or switching at the half-time."""

    def __init__(self, switching: bool = False) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.switching = switching
        self.t = 0

    def target(self) -> np.ndarray:
        if not self.switching:
            return OPTIMUM
        return FIRST if self.t < HORIZON // 2 else SECOND

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: np.ndarray) -> Any:
        reward = -float(np.sum((np.asarray(action, np.float64) - self.target()) ** 2))
        self.t += 1
        return np.zeros(1, np.float32), reward, False, False, {}


for _id, _switching in (("HHmLTestConstant-v0", False), ("HHmLTestSchedule-v0", True)):
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point=_Toy,
            kwargs={"switching": _switching},
            max_episode_steps=HORIZON,
        )


def _cfg(env_id: str, *extra: str) -> Any:
    return load_config(
        None,
        [
            f"env.id={env_id}",
            "training.total_steps=2400",
            "training.eval_episodes=4",
            "training.progress_bar=false",
            *extra,
        ],
    )


def _box(cfg: Any) -> Any:
    return to_box(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


def test_the_constant_search_finds_the_known_optimum_within_its_budget() -> None:
    cfg = _cfg("HHmLTestConstant-v0")
    found = search_open_loop(cfg, 1, 2400, _box(cfg), population=10, seed=0)
    # measured 3.1e-4 with this seed; allowed 3e-3
    np.testing.assert_allclose(found.actions[0], OPTIMUM, atol=3e-3)
    # 3/4 of the budget for 22 generations of 10 episodes of 8 steps (1760 steps), the
    # last quarter for re-scoring 4 finalists with 18 episodes each (576 steps)
    assert found.generations == 22 and found.selection_episodes == 72
    assert found.env_steps == 22 * 10 * HORIZON + 72 * HORIZON == 2336 <= 2400


def test_a_schedule_beats_every_constant_where_the_optimum_switches() -> None:
    cfg = _cfg("HHmLTestSchedule-v0")
    schedule = search_open_loop(cfg, 2, 2400, _box(cfg), population=10, seed=1)
    np.testing.assert_allclose(schedule.actions, [FIRST, SECOND], atol=0.1)  # measured 1.1e-2
    constant = search_open_loop(cfg, 1, 2400, _box(cfg), population=10, seed=1)
    # the best constant is the mean of the halves, 0: return −8 · 0.5 = −4 at best
    np.testing.assert_allclose(constant.actions[0], [0.0, 0.0], atol=1.6e-3)  # measured 1.6e-4


def test_budgets_below_two_episodes_are_refused() -> None:
    cfg = _cfg("HHmLTestConstant-v0")
    with pytest.raises(ConfigError, match="allows 1 episode"):
        search_open_loop(cfg, 1, 15, _box(cfg))


def test_run_baselines_scores_on_the_evaluation_protocol() -> None:
    results = {r.name: r for r in run_baselines(_cfg("HHmLTestConstant-v0"), population=10)}
    assert list(results) == ["random", "midpoint", "constant", "schedule"]
    midpoint = results["midpoint"]
    assert midpoint.returns == pytest.approx([-HORIZON * float(OPTIMUM @ OPTIMUM)] * 4, rel=1e-6)
    assert midpoint.search_env_steps == 0
    assert results["constant"].mean > -0.05 and results["constant"].search_env_steps == 2336
    assert results["random"].mean < midpoint.mean < results["constant"].mean
    json.dumps([r.to_dict() for r in results.values()])  # JSON-ready


def test_the_interval_is_the_student_t_interval() -> None:
    values = [1.0, 2.5, -0.5, 4.0, 3.0]
    lo, hi = mean_interval(values) or (0.0, 0.0)
    sem = np.std(values, ddof=1) / np.sqrt(len(values))
    ref = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sem)
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    # n = 2: t_{0.975, 1} = 12.7062047... (tables); interval of [0, 1] is 0.5 ± 12.706 · 0.5
    _, hi2 = mean_interval([0.0, 1.0]) or (0.0, 0.0)
    assert hi2 - 0.5 == pytest.approx(12.706204736 * 0.5, rel=1e-9)
    assert mean_interval([3.0]) is None


def test_a_schedule_policy_switches_at_its_segment_boundaries() -> None:
    policy = SchedulePolicy([[0.0], [1.0]], horizon=4)
    seen = [float(policy(np.zeros((1, 1)))[0, 0]) for _ in range(5)]
    assert seen == [0.0, 0.0, 1.0, 1.0, 1.0]  # after the horizon: the last segment
    with pytest.raises(ConfigError, match="within"):
        SchedulePolicy([[2.0]], horizon=4)


def test_the_cli_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    args = ["-", "env.id=HHmLTestConstant-v0", "training.total_steps=800"]
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  eval_episodes: 3\n")
    args[0] = str(config)
    result = CliRunner().invoke(
        baselines_cli, [*args, "--only", "midpoint,constant", "--json", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "midpoint" in result.output and "constant" in result.output
    data = json.loads(out.read_text())
    assert [b["name"] for b in data["baselines"]] == ["midpoint", "constant"]
    assert data["baselines"][1]["search_env_steps"] <= 800


def test_the_cli_rejects_unknown_baselines_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  eval_episodes: 3\n")
    result = CliRunner().invoke(
        baselines_cli, [str(config), "env.id=HHmLTestConstant-v0", "--only", "best"]
    )
    assert result.exit_code == 2
    assert "unknown baseline(s) ['best']; valid: random, midpoint, constant, schedule" in (
        result.output
    )
    assert "Traceback" not in result.output
