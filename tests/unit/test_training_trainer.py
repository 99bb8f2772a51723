"""Tests of the Trainer: run directory contents, evaluation, exact resume, Ctrl-C, env info.

Runs use ``Pendulum-v1`` with a tiny TD3 (16 units, 100 random steps before learning),
so a run of a few hundred steps takes about a second.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from hhml.config import load_config
from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.training import Trainer, TrainResult, load_checkpoint, read_metrics
from hhml.ml.training import trainer as trainer_module
from hhml.ml.training.metrics import TIME_PREFIX

SMALL = [
    "env.id=Pendulum-v1",
    "agent.algorithm=td3",
    "agent.hidden_size=16",
    "agent.learning_starts=100",
    "agent.batch_size=32",
    "agent.buffer_size=5000",
    "training.total_steps=400",
    "training.eval_every=200",
    "training.eval_episodes=2",
    "training.log_every=100",
    "training.checkpoint_every=200",
    "training.device=cpu",
    "training.progress_bar=false",
    "training.tensorboard=false",
    "training.torch_threads=1",
]


def small_config(*overrides: str) -> HHmLConfig:
    return load_config(None, [*SMALL, *overrides])


def without_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith(TIME_PREFIX)} for r in records]


def run(cfg: HHmLConfig, run_dir: Path) -> TrainResult:
    trainer = Trainer.create(cfg, run_dir=run_dir)
    try:
        return trainer.train()
    finally:
        trainer.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainResult]:
    """One uninterrupted 400-step run (with TensorBoard), shared by several tests."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    result = run(small_config("training.tensorboard=true"), run_dir)
    return run_dir, result


# ----------------------------------------------------------------------------- a whole run


def test_run_directory_holds_every_file(reference: tuple[Path, TrainResult]) -> None:
    run_dir, result = reference
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "metrics.json", "model_last.pt", "model_best.pt"} <= (
        names
    )
    assert (run_dir / "snapshots").is_dir()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    reloaded = load_config(run_dir / "config.yaml")
    assert reloaded == small_config("training.tensorboard=true")
    assert result.status == "completed" and result.step == 400


def test_metrics_records_and_summary(reference: tuple[Path, TrainResult]) -> None:
    run_dir, result = reference
    records = read_metrics(run_dir / "metrics.jsonl")
    kinds = [(r["kind"], r["step"]) for r in records]
    assert kinds == [
        ("baseline", 0),
        ("train", 100),
        ("train", 200),
        ("eval", 200),
        ("train", 300),
        ("train", 400),
        ("eval", 400),
        ("baselines", 400),
    ]
    train = [r for r in records if r["kind"] == "train"]
    # Losses, learning rate, gradient norms and the model size appear once learning started.
    for key in ("agent/critic_loss", "agent/lr", "agent/critic_grad_norm", "agent/actor_loss"):
        assert key in train[-1] and math_finite(train[-1][key])
    assert train[0]["updates"] == 1  # learning starts with the 100th transition
    assert train[-1]["model/num_parameters"] == result.summary["num_parameters"] > 0
    assert train[-1]["model/size_bytes"] > 4 * train[-1]["model/num_parameters"]
    assert train[1]["episodes"] == 1 and train[1]["episode/length_mean"] == 200.0
    assert train[-1]["updates"] == 400 - 100 + 1
    assert train[-1][f"{TIME_PREFIX}steps_per_sec"] > 0
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals[0]["eval/baseline_return"] == records[0]["baseline/return_mean"]
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary == result.summary
    assert summary["status"] == "completed" and summary["step"] == 400
    assert summary["baseline_return"] == records[0]["baseline/return_mean"]
    assert summary["first_eval"]["return_mean"] == evals[0]["eval/return_mean"]
    assert summary["final_eval"]["return_mean"] == evals[-1]["eval/return_mean"]
    best = max(e["eval/return_mean"] for e in evals)
    assert summary["best_eval"]["return_mean"] == best
    assert summary["final"] == without_time([train[-1]])[0]
    assert summary["versions"]["torch"] == torch.__version__
    assert summary["hardware"]["device"] == "cpu"
    # non-learning baselines with the agent's budget: 400 env steps are 2 Pendulum episodes
    baselines = {b["name"]: b for b in summary["baselines"]}
    assert list(baselines) == ["random", "midpoint", "constant", "schedule"]
    assert baselines["random"]["return_mean"] == summary["baseline_return"]
    assert baselines["constant"]["search_env_steps"] == 400  # one generation of 2 episodes
    assert set(summary["agent_vs_baselines"]) == set(baselines)


def math_finite(value: float) -> bool:
    return bool(np.isfinite(value))


def test_baseline_is_a_random_policy_on_the_eval_seeds(
    reference: tuple[Path, TrainResult],
) -> None:
    """Recompute the baseline by hand: uniform actions in [-2, 2], seeds eval_seed + i."""
    _, result = reference
    cfg = small_config()
    assert result.baseline is not None
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(cfg.training.eval_seed)
    returns = []
    for i in range(cfg.training.eval_episodes):
        env.reset(seed=cfg.training.eval_seed + i)
        total, done = 0.0, False
        while not done:
            action = rng.uniform(-1.0, 1.0, size=(1, 1)).astype(np.float32)
            scaled = np.clip(-2.0 + (action[0] + 1.0) * 2.0, -2.0, 2.0).astype(np.float32)
            _, reward, terminated, truncated, _ = env.step(scaled)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    assert result.baseline.returns == pytest.approx(returns, rel=1e-6)


def test_checkpoints_hold_what_resume_needs(reference: tuple[Path, TrainResult]) -> None:
    run_dir, result = reference
    last = load_checkpoint(run_dir / "model_last.pt")
    assert last["kind"] == "last" and last["step"] == 400
    assert last["agent_class"] == "TD3"
    assert "replay" in last["agent"] and "optimizers" in last["agent"]
    assert last["env"]["kind"] == "gym_envs"
    assert tuple(last["obs"].shape) == (1, 3)
    assert set(last["rng"]) == {"python", "numpy", "torch", "cuda"}
    best = load_checkpoint(run_dir / "model_best.pt")
    assert best["kind"] == "best" and "replay" not in best["agent"]
    assert result.best_eval is not None and best["step"] == result.best_eval.step


# ----------------------------------------------------------------------------- resume


def test_resume_with_more_steps_continues_the_trajectory(
    reference: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    """200 steps, then resume to 400: identical to one 400-step run (checkpoint at 200)."""
    short = tmp_path / "short"
    run(small_config("training.total_steps=200"), short)
    (short / "metrics.jsonl").open("a").write('{"kind":"train","step":300,"junk":1}\n{"torn')
    trainer = Trainer.resume(short, ["training.total_steps=400", "training.tensorboard=true"])
    try:
        assert trainer.state.step == 200 and trainer.state.sessions == 2
        # The killed-run lines after the checkpoint are gone before training continues.
        assert [r["step"] for r in read_metrics(short / "metrics.jsonl")][-1] == 200
        result = trainer.train()
    finally:
        trainer.close()
    full, expected = reference
    assert without_time(read_metrics(short / "metrics.jsonl")) == without_time(
        read_metrics(full / "metrics.jsonl")
    )
    assert result.summary["final"] == expected.summary["final"]
    assert result.summary["evals"] == expected.summary["evals"]
    assert load_config(short / "config.yaml").training.total_steps == 400
    a = load_checkpoint(short / "model_last.pt")["agent"]["networks"]
    b = load_checkpoint(full / "model_last.pt")["agent"]["networks"]
    for name in b:
        for key, tensor in b[name].items():
            assert torch.equal(a[name][key], tensor), f"{name}.{key}"


def test_resume_refuses_a_trajectory_changing_override(reference: tuple[Path, TrainResult]) -> None:
    run_dir, _ = reference
    with pytest.raises(ConfigError, match=r"cannot change 'agent.batch_size'.*resumable keys"):
        Trainer.resume(run_dir, ["agent.batch_size=64"])


def test_resume_of_a_directory_without_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such run directory"):
        Trainer.resume(tmp_path / "missing")
    (tmp_path / "config.yaml").write_text("training:\n  total_steps: 10\n")
    with pytest.raises(CheckpointError, match=r"no model_last\.pt"):
        Trainer.resume(tmp_path)


def test_sigint_writes_a_checkpoint_and_resume_matches(
    reference: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    """Ctrl-C at step 250: clean stop with a checkpoint there; the resumed run equals one run."""
    cfg = small_config()
    trainer = Trainer.create(cfg, run_dir=tmp_path / "interrupted")
    original_step = trainer._step

    def step_then_interrupt(snapshot: bool = False) -> None:
        original_step(snapshot)
        if trainer.state.step == 250:
            os.kill(os.getpid(), signal.SIGINT)

    trainer._step = step_then_interrupt  # type: ignore[method-assign]
    try:
        result = trainer.train()
    finally:
        trainer.close()
    assert result.status == "interrupted" and result.step == 250
    assert load_checkpoint(tmp_path / "interrupted" / "model_last.pt")["step"] == 250
    assert json.loads((tmp_path / "interrupted" / "metrics.json").read_text())["status"] == (
        "interrupted"
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = Trainer.resume(tmp_path / "interrupted")
    try:
        final = resumed.train()
    finally:
        resumed.close()
    full, expected = reference
    assert final.status == "completed"
    assert without_time(read_metrics(tmp_path / "interrupted" / "metrics.jsonl")) == without_time(
        read_metrics(full / "metrics.jsonl")
    )
    assert final.summary["final"] == expected.summary["final"]


# ----------------------------------------------------------------------------- validation first


def test_create_validates_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "x"
    with pytest.raises(ConfigError, match="NoSuchEnv-v0"):
        Trainer.create(small_config("env.id=NoSuchEnv-v0"), run_dir=target)
    assert not (tmp_path / "runs").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(CheckpointError, match="already exists and is not empty"):
        Trainer.create(small_config(), run_dir=tmp_path / "busy")


def test_create_writes_only_config_yaml_before_training(tmp_path: Path) -> None:
    trainer = Trainer.create(small_config(), run_dir=tmp_path / "run")
    try:
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "snapshots"]
    finally:
        trainer.close()


def test_named_and_timestamped_run_directories(tmp_path: Path) -> None:
    root = f"training.run_root={tmp_path}"
    named = Trainer.create(small_config(root, "training.run_name=my-run"))
    named.close()
    assert named.run.root == tmp_path / "my-run"
    first = Trainer.create(small_config(root))
    second = Trainer.create(small_config(root))
    first.close()
    second.close()
    assert first.run.root.name.endswith("-td3-pendulum-v1-s0")
    assert second.run.root != first.run.root


def test_a_run_too_short_to_learn_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"agent\.learning_starts = 500 >= training\.total"):
        Trainer.create(small_config("agent.learning_starts=500"), run_dir=tmp_path / "r").close()


def test_non_box_environment_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CartPole-v1.*action space .*1-D Box"):
        Trainer.create(small_config("env.id=CartPole-v1"), run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- Möbius-like env


class FakeMobiusVecEnv(gym.vector.VectorEnv):  # type: ignore[misc]
    """A point that the action pushes around, with the Möbius env's extra interface.

    Provides ``state_dict``/``load_state_dict``, ``snapshot`` and the per-step info
    groups ``reward_terms``, ``params``, ``vortex`` and ``termination``.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
        self.single_action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.x = torch.zeros(num_envs)
        self.t = torch.zeros(num_envs, dtype=torch.int64)
        self.gen = torch.Generator().manual_seed(0)

    def _obs(self) -> np.ndarray:
        return torch.stack([self.x, self.t.float() / 10], dim=1).numpy().astype(np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.gen.manual_seed(seed)
        self.x = torch.rand(self.num_envs, generator=self.gen)
        self.t.zero_()
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[Any, ...]:
        self.x = self.x + torch.as_tensor(action[:, 0]) * 0.1
        self.x += 0.01 * torch.randn(self.num_envs, generator=self.gen)
        self.t += 1
        distance = -self.x.abs().numpy()
        reward = distance - 0.1
        truncated = (self.t >= 20).numpy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        info: dict[str, Any] = {
            "reward_terms": {"distance": distance, "cost": np.full(self.num_envs, -0.1)},
            "params": {f"p{i}": np.full(self.num_envs, float(i)) for i in range(23)},
            "vortex": {"density": np.abs(self.x.numpy()), "count": np.ones(self.num_envs)},
            # integer codes of hhml.ml.env.state.TERMINATION_REASONS (1: collapsed)
            "termination": np.where(truncated, 1, 0),
        }
        obs = self._obs()
        if truncated.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = truncated
            fresh = torch.rand(self.num_envs, generator=self.gen)
            self.x = torch.where(torch.as_tensor(truncated), fresh, self.x)
            self.t[torch.as_tensor(truncated)] = 0
            obs = self._obs()
        return obs, reward.astype(np.float32), terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        return {"x": self.x.clone(), "t": self.t.clone(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.x, self.t = state["x"].clone(), state["t"].clone()
        self.gen.set_state(state["gen"])

    def snapshot(self) -> dict[str, Any]:
        return {"psi": self.x.clone()}


@pytest.fixture
def fake_mobius(monkeypatch: pytest.MonkeyPatch) -> None:
    def make(cfg: HHmLConfig, num_envs: int, seed: int, device: Any = "cpu") -> Any:
        return FakeMobiusVecEnv(num_envs)

    monkeypatch.setattr(trainer_module, "make_vector_env", make)


@pytest.mark.usefixtures("fake_mobius")
def test_mobius_info_is_logged_and_env_state_checkpointed(tmp_path: Path) -> None:
    cfg = small_config(
        "env.num_envs=2",
        "training.total_steps=120",
        "training.log_every=40",
        "training.eval_every=60",
        "training.checkpoint_every=60",
        "training.snapshot_every=60",
        "agent.learning_starts=40",
    )
    result = run(cfg, tmp_path / "run")
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [40, 80, 120]
    last = train[-1]
    assert last["reward/cost"] == pytest.approx(-0.1)
    assert {f"params/p{i}" for i in range(23)} <= set(last)
    assert last["params/p22"] == 22.0
    assert "vortex/density" in last and last["vortex/count"] == 1.0
    # 2 envs truncate every 20 vector steps = 40 env steps: 2 episodes per interval.
    assert last["termination/collapsed"] == 2.0
    assert not [k for k in last if k.startswith("termination/") and k != "termination/collapsed"]
    assert last["episode/length_mean"] == 20.0
    evals = [r for r in records if r["kind"] == "eval"]
    assert "eval/vortex/density" in evals[0] and "eval/reward/distance" in evals[0]
    from hhml.io.fields import read_snapshot

    snapshots = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snapshots == ["step_0000000060.h5", "step_0000000120.h5"]
    snap = read_snapshot(tmp_path / "run" / "snapshots" / snapshots[0])
    assert snap["step"] == 60 and snap["psi"].shape == (2,)
    ckpt = load_checkpoint(tmp_path / "run" / "model_last.pt")
    assert ckpt["env"]["kind"] == "state_dict" and set(ckpt["env"]["state"]) == {"x", "t", "gen"}
    assert result.status == "completed"

    # Resume from the middle (step 60) reproduces the tail exactly.
    short = tmp_path / "short"
    run(dataclasses.replace(cfg, training=cfg.training.replace(total_steps=60)), short)
    trainer = Trainer.resume(short, ["training.total_steps=120"])
    try:
        trainer.train()
    finally:
        trainer.close()
    assert without_time(read_metrics(short / "metrics.jsonl")) == without_time(records)


@pytest.mark.usefixtures("fake_mobius")
def test_actions_reach_the_env_rescaled(tmp_path: Path) -> None:
    """A Box of [-2, 2]: the agent's [-1, 1] maps affinely onto it."""
    trainer = Trainer.create(small_config(), run_dir=tmp_path / "r")
    try:
        trainer._act_low_t = torch.tensor([-2.0])
        trainer._act_high_t = torch.tensor([2.0])
        trainer._rescale = True
        out = trainer._env_action(np.array([[-1.0], [0.0], [0.5], [1.0]], np.float32))
        assert out.tolist() == [[-2.0], [0.0], [1.0], [2.0]]
        beyond = trainer._env_action_tensor(torch.tensor([[-1.5], [1.5]]))
        assert beyond.tolist() == [[-2.0], [2.0]]  # clipped into the Box
    finally:
        trainer.close()
