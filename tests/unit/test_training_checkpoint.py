"""Tests of checkpoint files, RNG capture, metric files and run-directory helpers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hhml.config import load_config
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.training import (
    CHECKPOINT_VERSION,
    Trainer,
    load_checkpoint,
    load_trained_agent,
    save_checkpoint,
)
from hhml.ml.training.checkpoint import check_env_checkpointable, env_state, load_env_state
from hhml.ml.training.metrics import IntervalStats, read_metrics, truncate_metrics
from hhml.ml.training.rng import capture_rng_state, restore_rng_state
from hhml.ml.training.run_dir import create_run_dir, plan_run_dir
from hhml.utils.atomic_io import append_jsonl

SMALL = [
    "env.id=Pendulum-v1",
    "agent.hidden_size=16",
    "agent.learning_starts=50",
    "agent.batch_size=16",
    "agent.buffer_size=1000",
    "training.total_steps=100",
    "training.eval_episodes=1",
    "training.log_every=50",
    "training.checkpoint_every=100",
    "training.device=cpu",
    "training.progress_bar=false",
    "training.tensorboard=false",
    "training.torch_threads=1",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ckpt") / "run"
    trainer = Trainer.create(load_config(None, SMALL), run_dir=run_dir)
    try:
        trainer.train()
    finally:
        trainer.close()
    return run_dir


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run (tests edit its checkpoint)."""
    target = tmp_path / "run"
    target.mkdir()
    for name in ("config.yaml", "metrics.jsonl", "model_last.pt"):
        (target / name).write_bytes((finished_run / name).read_bytes())
    return target


def edit_checkpoint(path: Path, **changes: Any) -> None:
    data = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    torch.save(data, path)


# ----------------------------------------------------------------------------- load_checkpoint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no checkpoint file at .*absent\.pt"):
        load_checkpoint(tmp_path / "absent.pt")


def test_truncated_file_is_reported_as_corrupted(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model_last\.pt is corrupted or not a torch"):
        load_checkpoint(path)


def test_garbage_file_is_reported_as_corrupted(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.pt"):
        load_checkpoint(path)


def test_other_torch_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an HHmL training checkpoint"):
        load_checkpoint(path)


def test_other_format_version(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    edit_checkpoint(path, format_version=99, hhml_version="9.9")
    with pytest.raises(
        CheckpointError,
        match=rf"format version 99 \(written by hhml 9\.9\).*reads version {CHECKPOINT_VERSION}",
    ):
        load_checkpoint(path)


def test_missing_key(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    edit_checkpoint(path, rng=None)
    with pytest.raises(CheckpointError, match="lacks the key 'rng'"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="lacks the key 'rng'"):
        Trainer.resume(run_copy)


def test_key_of_the_wrong_type(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    edit_checkpoint(path, step="100")
    with pytest.raises(CheckpointError, match="key 'step' has type str, expected int"):
        load_checkpoint(path)


def test_objects_beyond_weights_are_refused(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    edit_checkpoint(path, extra=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"cannot be loaded safely \(weights_only=True\)"):
        load_checkpoint(path)


def test_network_of_a_different_shape(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    data = torch.load(path, weights_only=True)
    actor = data["agent"]["networks"]["actor"]
    key = next(iter(actor))
    actor[key] = torch.zeros(7, 7)
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=rf"model_last\.pt: agent: .*{key}.*shape \(7, 7\)"):
        Trainer.resume(run_copy)


def test_observations_of_a_different_shape(run_copy: Path) -> None:
    edit_checkpoint(run_copy / "model_last.pt", obs=torch.zeros(1, 5))
    with pytest.raises(CheckpointError, match=r"key 'obs' has shape \(1, 5\), expected \(1, 3\)"):
        Trainer.resume(run_copy)


def test_checkpoint_of_another_config(run_copy: Path) -> None:
    path = run_copy / "model_last.pt"
    data = torch.load(path, weights_only=True)
    data["config"]["agent"]["gamma"] = 0.5
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=r"different config \(agent\.gamma differ"):
        Trainer.resume(run_copy)


def test_trained_agent_from_the_best_checkpoint(finished_run: Path) -> None:
    agent = load_trained_agent(finished_run / "model_best.pt")
    best = load_checkpoint(finished_run / "model_best.pt")
    assert type(agent).__name__ == best["agent_class"] == "TD3"
    assert (agent.obs_dim, agent.act_dim) == (3, 1)
    obs = np.zeros((2, 3), np.float32)
    action = agent.act(obs, explore=False)
    assert action.shape == (2, 1) and np.all(np.abs(action) <= 1)


def test_best_checkpoint_cannot_be_resumed(finished_run: Path, run_copy: Path) -> None:
    (run_copy / "model_last.pt").write_bytes((finished_run / "model_best.pt").read_bytes())
    with pytest.raises(CheckpointError, match="is a 'best' checkpoint; resuming needs"):
        Trainer.resume(run_copy)


def test_save_adds_the_format_header(tmp_path: Path) -> None:
    path = save_checkpoint(
        tmp_path / "c.pt",
        {
            "kind": "best",
            "step": 3,
            "config": {},
            "agent_class": "X",
            "obs_dim": 3,
            "act_dim": 1,
            "agent": {},
        },
    )
    data = load_checkpoint(path)
    assert data["format_version"] == CHECKPOINT_VERSION and data["step"] == 3
    assert not list(tmp_path.glob(".*.tmp"))


# ----------------------------------------------------------------------------- env state


def test_gymnasium_sub_envs_round_trip_as_plain_data(tmp_path: Path) -> None:
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    def make() -> Any:
        return gym.make_vec(
            "Pendulum-v1",
            num_envs=2,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )

    envs, other = make(), make()
    envs.reset(seed=1)
    other.reset(seed=2)
    for _ in range(5):
        envs.step(np.ones((2, 1), np.float32))
    torch.save(env_state(envs), tmp_path / "env.pt")
    state = torch.load(tmp_path / "env.pt", weights_only=True)
    assert state["kind"] == "gym_envs"
    load_env_state(other, state, "test.pt")
    # 250 steps cross the 200-step time limit, so the autoreset draws from the restored
    # np_random too; the reference is the uninterrupted env: exact equality.
    for i in range(250):
        action = np.full((2, 1), np.sin(i), np.float32)
        for a, b in zip(envs.step(action)[:4], other.step(action)[:4], strict=True):
            assert np.array_equal(a, b), i
    three = gym.make_vec("Pendulum-v1", num_envs=3, vectorization_mode="sync")
    with pytest.raises(CheckpointError, match="holds 2 sub-envs, this run has 3"):
        load_env_state(three, state, "test.pt")
    with pytest.raises(CheckpointError, match=r"'env\.kind' = 'other' is not valid"):
        load_env_state(envs, {"kind": "other"}, "test.pt")


def test_a_value_not_saved_as_plain_data_makes_resume_fail_clearly() -> None:
    import collections

    import gymnasium as gym

    envs = gym.make_vec("Pendulum-v1", num_envs=1, vectorization_mode="sync")
    envs.reset(seed=0)
    envs.envs[0].unwrapped.history = collections.deque([1, 2])
    state = env_state(envs)
    before = envs.envs[0].unwrapped.state.copy()
    with pytest.raises(
        CheckpointError,
        match=r"sub-env 0 \(Pendulum-v1\): PendulumEnv\.history held a deque .*cannot be resumed",
    ):
        load_env_state(envs, state, "test.pt")
    assert np.array_equal(envs.envs[0].unwrapped.state, before)  # nothing was written


def test_pickled_sub_envs_are_refused_and_never_unpickled(run_copy: Path) -> None:
    import pickle

    marker = run_copy / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    path = run_copy / "model_last.pt"
    edit_checkpoint(path, env={"kind": "pickled_envs", "data": pickle.dumps([Exploit()])})
    with pytest.raises(CheckpointError, match=r"pickled gymnasium sub-envs .*not loaded"):
        Trainer.resume(run_copy)
    assert not marker.exists()


def test_env_without_state_cannot_be_checkpointed() -> None:
    with pytest.raises(ConfigError, match="object cannot be checkpointed"):
        check_env_checkpointable(object())


# ----------------------------------------------------------------------------- RNG states


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leave a cached Gaussian in the legacy state
    state = capture_rng_state()
    first = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    torch.save(state, tmp_path / "rng.pt")
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    assert again == first


def test_malformed_rng_state() -> None:
    with pytest.raises(CheckpointError, match="entry 'rng' is malformed"):
        restore_rng_state({"python": [3, [1, 2], None]})


# ----------------------------------------------------------------------------- metrics files


def test_truncate_metrics_drops_later_and_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    for step in (0, 100, 200, 300):
        append_jsonl(path, {"kind": "train", "step": step})
    with path.open("a") as handle:
        handle.write('{"kind": "tr')
    assert truncate_metrics(path, 200) == 2
    assert [r["step"] for r in read_metrics(path)] == [0, 100, 200]
    assert truncate_metrics(path, 200) == 0
    assert truncate_metrics(tmp_path / "absent.jsonl", 5) == 0


def test_interval_stats_means_totals_last_and_state() -> None:
    stats = IntervalStats()
    stats.add("a", [1.0, 3.0])
    stats.add("a", 4.0)
    stats.add_count("n", 2)
    stats.set_last("p", [5.0, 7.0])
    assert stats.means() == {"a": 3.0, "n": 2.0, "p": 6.0}
    copy = IntervalStats()
    copy.load_state_dict(json.loads(json.dumps(stats.state_dict())))
    assert copy.means() == stats.means()
    stats.clear()
    assert stats.means() == {"p": 6.0}


# ----------------------------------------------------------------------------- run directories


def test_plan_run_dir_refuses_unusable_places(tmp_path: Path) -> None:
    cfg = load_config(None, SMALL)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match=r"exists and is not a directory"):
        plan_run_dir(cfg, blocker / "sub" / "run")
    with pytest.raises(CheckpointError, match=r"run directory .*file exists and is not a dir"):
        plan_run_dir(cfg, blocker)
    assert plan_run_dir(cfg, tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()


def test_create_run_dir_writes_config_first(tmp_path: Path) -> None:
    cfg = load_config(None, SMALL)
    run = create_run_dir(tmp_path / "a" / "b", cfg)
    assert [p.name for p in run.root.iterdir()] == ["config.yaml"]
    assert load_config(run.config) == cfg
