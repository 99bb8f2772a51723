"""MobiusVortexSB3VecEnv: stable-baselines3's VecEnv contract over the batched Möbius env.

References: the wrapped gymnasium ``MobiusVortexVecEnv`` stepped alongside with the same
seed and actions (the adapter must only re-arrange its outputs, so values agree exactly:
measured difference 0 on CPU), and SB3's own ``DummyVecEnv`` on ``Pendulum-v1`` for the
SB3 semantics (again exact: same gymnasium envs, same seeds).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3 import TD3
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError, HHmLError
from hhml.ml.env import CONTROLS, OBSERVATION_FEATURES, MobiusVortexVecEnv, default_env_config
from hhml.ml.env.sb3 import MobiusVortexSB3VecEnv, SB3AdapterError, SB3AttributeError

N = 4
OBS_DIM = len(OBSERVATION_FEATURES) + len(CONTROLS)
PROGRESS = [name for name, _ in OBSERVATION_FEATURES].index("episode_progress")
NAMES = [c.name for c in CONTROLS]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small batches and SB3's small networks are fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(**env: object) -> HHmLConfig:
    cfg = default_env_config()
    return dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, **env))


def _staggered_actions() -> np.ndarray:
    """Env 0 strongly damped with its sources off (rms |ψ| stays ≈ 0.1), the others at the
    mid-point of every control (rms grows to ≈ 0.2–0.35 within 3 steps)."""
    actions = np.zeros((N, len(CONTROLS)), dtype=np.float32)
    actions[0, NAMES.index("damping")] = 1.0
    actions[0, NAMES.index("source_amplitude")] = -1.0
    return actions


def _progress(elapsed: np.ndarray | int, horizon: int) -> np.ndarray:
    """Observation entry ``episode_progress``: elapsed / horizon in float64, stored as
    float32 (so the comparison is exact)."""
    return (np.asarray(elapsed) / horizon).astype(np.float32)


def _assert_rows_equal(row: dict[str, object], info: dict[str, object], i: int) -> None:
    """``row`` is entry ``i`` of every batched value of the gymnasium ``info``."""
    for key, value in info.items():
        if key.startswith("_") or key == "final_obs":
            continue
        if isinstance(value, dict):
            sub = row[key]
            assert isinstance(sub, dict)
            _assert_rows_equal(sub, value, i)
        else:
            assert row[key] == np.asarray(value)[i], key


# ------------------------------------------------------------------ contract
def test_spaces_reset_and_step_shapes_and_dtypes() -> None:
    env = MobiusVortexSB3VecEnv.from_config(_cfg(horizon=5), num_envs=N, seed=0)
    assert env.num_envs == N
    assert env.observation_space == env.venv.single_observation_space
    assert env.action_space == env.venv.single_action_space
    assert env.observation_space.shape == (OBS_DIM,) and env.action_space.shape == (23,)
    assert env.render_mode is None
    obs = env.reset()
    assert obs.shape == (N, OBS_DIM) and obs.dtype == np.float32
    assert env.reset_infos == [{}] * N
    obs, rewards, dones, infos = env.step(np.zeros((N, 23), dtype=np.float32))
    assert obs.shape == (N, OBS_DIM) and obs.dtype == np.float32
    assert all(env.observation_space.contains(o) for o in obs)
    assert rewards.shape == (N,) and rewards.dtype == np.float32
    assert dones.shape == (N,) and dones.dtype == np.bool_
    assert isinstance(infos, list) and len(infos) == N
    for row in infos:
        assert set(row) >= {"reward_terms", "vortex", "params", "TimeLimit.truncated"}
        assert isinstance(row["reward_terms"]["density"], float)
        assert isinstance(row["vortex"]["count"], float)
        assert row["TimeLimit.truncated"] is False
        assert "terminal_observation" not in row
    env.close()


def test_outputs_match_the_gymnasium_vector_env_with_mixed_endings() -> None:
    """Env 0 collapses every step (rms < collapse_rms = 0.15), the others are truncated
    every 4 steps: terminal_observation exactly for the finished envs, equal to
    info["final_obs"]; TimeLimit.truncated only for the truncated ones."""
    cfg = _cfg(horizon=4, collapse_rms=0.15)
    adapter = MobiusVortexSB3VecEnv(MobiusVortexVecEnv(cfg, N), seed=3)
    reference = MobiusVortexVecEnv(cfg, N)
    ref_obs, _ = reference.reset(seed=3)
    np.testing.assert_array_equal(adapter.reset(), ref_obs)
    actions = _staggered_actions()
    kinds = set()
    for _ in range(8):
        obs, rewards, dones, infos = adapter.step(actions)
        r_obs, r_reward, r_term, r_trunc, r_info = reference.step(actions)
        np.testing.assert_array_equal(obs, r_obs)
        np.testing.assert_array_equal(rewards, r_reward.astype(np.float32))
        np.testing.assert_array_equal(dones, r_term | r_trunc)
        for i, row in enumerate(infos):
            _assert_rows_equal(row, r_info, i)
            assert row["TimeLimit.truncated"] == bool(r_trunc[i] and not r_term[i])
            assert ("terminal_observation" in row) == bool(dones[i])
            if dones[i]:
                np.testing.assert_array_equal(row["terminal_observation"], r_info["final_obs"][i])
                # the row of obs is the reset observation of the next episode
                assert obs[i, PROGRESS] == 0.0
                kinds.add("terminated" if r_term[i] else "truncated")
        kinds.add(f"{int(dones.sum())} of {N} done")
    # the scenario did exercise mixed endings (a precondition, not the tested property)
    assert {"terminated", "truncated", f"1 of {N} done", f"{N} of {N} done"} <= kinds


def test_truncation_after_horizon_steps() -> None:
    horizon = 3
    env = MobiusVortexSB3VecEnv.from_config(_cfg(horizon=horizon), num_envs=N, seed=1)
    env.reset()
    zeros = np.zeros((N, 23), dtype=np.float32)
    for step in range(1, 2 * horizon + 1):
        obs, _, dones, infos = env.step(zeros)
        end = step % horizon == 0
        assert dones.tolist() == [end] * N
        assert [row["TimeLimit.truncated"] for row in infos] == [end] * N
        if end:
            for i, row in enumerate(infos):
                # progress = elapsed / horizon: 1 in the last observation, 0 after the reset
                assert row["terminal_observation"][PROGRESS] == 1.0
                assert obs[i, PROGRESS] == 0.0
        else:
            np.testing.assert_array_equal(obs[:, PROGRESS], _progress(step % horizon, horizon))


def test_terminated_is_not_a_time_limit_truncation() -> None:
    env = MobiusVortexSB3VecEnv.from_config(_cfg(collapse_rms=10.0), num_envs=N, seed=0)
    env.reset()
    _, rewards, dones, infos = env.step(np.zeros((N, 23), dtype=np.float32))
    assert dones.all()
    np.testing.assert_array_equal(rewards, np.full(N, -1.0, dtype=np.float32))
    assert [row["TimeLimit.truncated"] for row in infos] == [False] * N
    assert all(row["terminal_observation"].shape == (OBS_DIM,) for row in infos)


def test_matches_sb3_dummy_vec_env_on_pendulum() -> None:
    """Any same-step gymnasium vector env: SB3's DummyVecEnv over the same gymnasium envs is
    the reference for obs, rewards, dones, terminal_observation and TimeLimit.truncated."""
    n, seed = 3, 5
    venv = gym.make_vec(
        "Pendulum-v1",
        num_envs=n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        max_episode_steps=3,
    )
    adapter = MobiusVortexSB3VecEnv(venv, seed=seed)
    dummy = DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=3)] * n)
    dummy.seed(seed)
    np.testing.assert_array_equal(adapter.reset(), dummy.reset())
    rng = np.random.default_rng(0)
    for _ in range(7):
        actions = rng.uniform(-2.0, 2.0, (n, 1)).astype(np.float32)
        obs, rewards, dones, infos = adapter.step(actions)
        d_obs, d_rewards, d_dones, d_infos = dummy.step(actions)
        np.testing.assert_array_equal(obs, d_obs)
        np.testing.assert_array_equal(rewards, d_rewards)
        np.testing.assert_array_equal(dones, d_dones)
        for row, d_row in zip(infos, d_infos, strict=True):
            assert set(row) == set(d_row)
            assert row["TimeLimit.truncated"] == d_row["TimeLimit.truncated"]
            if "terminal_observation" in d_row:
                np.testing.assert_array_equal(
                    row["terminal_observation"], d_row["terminal_observation"]
                )
    assert adapter.env_is_wrapped(gym.wrappers.TimeLimit) == [True] * n
    assert adapter.env_is_wrapped(Monitor) == [False] * n


class _TensorInfoVecEnv(gym.vector.VectorEnv):  # type: ignore[misc]
    """A same-step vector env whose info holds torch tensors (as a device-native env
    might), optionally with a value that has no env axis (a contract violation)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(self, num_envs: int, bad: bool = False) -> None:
        self.num_envs, self.bad = num_envs, bad
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: object = None, options: object = None) -> tuple[np.ndarray, dict]:
        return np.zeros((self.num_envs, 2), np.float32), {}

    def step(self, actions: np.ndarray) -> tuple:
        n = self.num_envs
        done = torch.arange(n) % 2 == 0
        info: dict[str, object] = {
            "stats": {"count": torch.arange(n, dtype=torch.float64) * 10.0},
            "code": torch.arange(n),
            "final_obs": torch.ones(n, 2),
            "_final_obs": done,
        }
        if self.bad:
            info["shared"] = np.zeros(5)
        obs = torch.zeros(n, 2).numpy()
        return obs, torch.ones(n), done, torch.zeros(n, dtype=torch.bool), info


def test_tensor_infos_are_split_per_env_and_unbatched_values_rejected() -> None:
    env = MobiusVortexSB3VecEnv(_TensorInfoVecEnv(3), seed=0)
    env.reset()
    _, rewards, dones, infos = env.step(np.zeros((3, 1)))
    assert dones.tolist() == [True, False, True] and rewards.dtype == np.float32
    assert [row["stats"]["count"] for row in infos] == [0.0, 10.0, 20.0]
    assert [row["code"] for row in infos] == [0, 1, 2]
    assert all(isinstance(row["code"], int) for row in infos)
    assert ["terminal_observation" in row for row in infos] == [True, False, True]
    np.testing.assert_array_equal(infos[2]["terminal_observation"], np.ones(2, np.float32))
    bad = MobiusVortexSB3VecEnv(_TensorInfoVecEnv(3, bad=True), seed=0)
    bad.reset()
    with pytest.raises(SB3AdapterError, match=r"info\['shared'\] is a ndarray of shape \(5,\)"):
        bad.step(np.zeros((3, 1)))


# --------------------------------------------------------------- seeding
def test_seeded_runs_are_identical_and_seeds_differ() -> None:
    cfg = _cfg(horizon=3)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, (4, N, 23)).astype(np.float32)

    def run(env: MobiusVortexSB3VecEnv) -> list[np.ndarray]:
        out = [env.reset()]
        for a in actions:
            obs, rewards, _, infos = env.step(a)
            out += [obs, rewards] + [
                row["terminal_observation"]
                for row in infos
                if row.get("terminal_observation") is not None
            ]
        return out

    first = MobiusVortexSB3VecEnv.from_config(cfg, N, seed=7)
    second = MobiusVortexSB3VecEnv.from_config(cfg, N)
    assert second.seed(7) == [7, 8, 9, 10]
    a, b = run(first), run(second)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # re-seeding a used env replays it
    first.seed(7)
    for x, y in zip(a, run(first), strict=True):
        np.testing.assert_array_equal(x, y)
    other = MobiusVortexSB3VecEnv.from_config(cfg, N, seed=8)
    assert not np.array_equal(other.reset(), a[0])


# ------------------------------------------------------- unsupported parts
def test_attributes_methods_and_rendering_fail_clearly() -> None:
    env = MobiusVortexSB3VecEnv.from_config(num_envs=N, seed=0)
    assert env.get_attr("render_mode") == [None] * N
    assert env.get_attr("observation_space", indices=[1, 2]) == [env.observation_space] * 2
    assert env.has_attr("action_space") and not env.has_attr("core")
    with pytest.raises(SB3AttributeError, match=r"'core'.*venv") as err:
        env.get_attr("core")
    assert isinstance(err.value, AttributeError) and isinstance(err.value, HHmLError)
    with pytest.raises(SB3AdapterError, match=r"indices \[4\] are out of range"):
        env.get_attr("render_mode", indices=4)
    with pytest.raises(SB3AdapterError, match=r"set_attr\('horizon'\) is not supported"):
        env.set_attr("horizon", 3)
    with pytest.raises(SB3AdapterError, match=r"env_method\('snapshot'\) is not supported"):
        env.env_method("snapshot")
    with pytest.raises(SB3AdapterError, match=r"render.*not supported"):
        env.render()
    with pytest.raises(SB3AdapterError, match="get_images"):
        env.get_images()
    assert env.env_is_wrapped(Monitor) == [False] * N
    with pytest.raises(SB3AdapterError, match="without a pending step_async"):
        env.step_wait()
    env.set_options([{"a": 1}, {}, {}, {}])
    with pytest.raises(SB3AdapterError, match="one options dict"):
        env.reset()


def test_rejects_what_it_cannot_wrap() -> None:
    with pytest.raises(ConfigError, match="venv is a PendulumEnv"):
        MobiusVortexSB3VecEnv(gym.make("Pendulum-v1").unwrapped)  # type: ignore[arg-type]
    next_step = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(ConfigError, match="autoreset_mode"):
        MobiusVortexSB3VecEnv(next_step)
    with pytest.raises(ConfigError, match="num_envs = 0"):
        MobiusVortexSB3VecEnv.from_config(num_envs=0)


def test_missing_stable_baselines3_is_a_clear_import_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "stable_baselines3"]:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "hhml.ml.env.sb3")
    with pytest.raises(ImportError, match=r"needs stable-baselines3.*pip install") as err:
        importlib.import_module("hhml.ml.env.sb3")
    assert isinstance(err.value, HHmLError)


# ---------------------------------------------------------------- training
def test_td3_learns_on_four_batched_envs_and_fills_the_replay_buffer() -> None:
    horizon, total = 5, 200
    cfg = _cfg(horizon=horizon)
    env = MobiusVortexSB3VecEnv.from_config(cfg, num_envs=N)
    model = TD3(
        "MlpPolicy",
        env,
        learning_starts=100,
        batch_size=32,
        buffer_size=1000,
        policy_kwargs={"net_arch": [32, 32]},
        seed=0,
        device="cpu",
    )
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.learn(total_timesteps=total)
    assert model.num_timesteps == total
    buf = model.replay_buffer
    rows = total // N  # one row of N transitions per vector step
    assert buf.pos == rows and not buf.full and buf.size() == rows
    obs, nxt = buf.observations[:rows], buf.next_observations[:rows]
    # the model's seed reached the simulator: the first row is the seed-0 reset
    np.testing.assert_array_equal(obs[0], MobiusVortexVecEnv(cfg, N).reset(seed=0)[0])
    assert np.all(np.abs(buf.actions[:rows]) <= 1.0) and np.any(buf.actions[:rows] != 0.0)
    # every N-row holds N real transitions: progress steps by 1/horizon; at a time limit the
    # stored next observation is the terminal one (progress 1), not the reset one (0)
    step = np.broadcast_to(np.arange(rows)[:, None] % horizon, (rows, N))
    np.testing.assert_array_equal(obs[:, :, PROGRESS], _progress(step, horizon))
    np.testing.assert_array_equal(nxt[:, :, PROGRESS], _progress(step + 1, horizon))
    last = step == horizon - 1
    np.testing.assert_array_equal(buf.timeouts[:rows].astype(bool), last)
    np.testing.assert_array_equal(buf.dones[:rows].astype(bool), last)
    # within an episode, the next observation is the next row's observation
    np.testing.assert_array_equal(nxt[:-1][~last[:-1]], obs[1:][~last[:-1]])
    assert buf.rewards[:rows].min() >= 0.0  # no collapse: every term is in [0, 1]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.actor.parameters(), strict=True))
