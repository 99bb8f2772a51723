"""MobiusVortexEnv / MobiusVortexVecEnv: API conformance, controls, rewards, failure modes."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import hhml.ml.env  # noqa: F401  (registers hhml/MobiusVortex-v0)
from hhml.config import load_config
from hhml.config.schema import HHmLConfig
from hhml.errors import ConfigError
from hhml.ml.env import (
    CONTROLS,
    OBSERVATION_FEATURES,
    ControlMap,
    MobiusVortexEnv,
    MobiusVortexVecEnv,
    default_env_config,
    make_vector_env,
)
from hhml.ml.env.state import TERMINATION_REASONS

N_FEATURES = len(OBSERVATION_FEATURES)


def _cfg(**env: object) -> HHmLConfig:
    cfg = default_env_config()
    return dataclasses.replace(cfg, env=cfg.env.replace(**env))


def test_gymnasium_and_sb3_env_checkers_pass() -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("hhml/MobiusVortex-v0")
    check_env(env.unwrapped)  # includes seeded determinism of reset and step
    sb3_check_env(MobiusVortexEnv(), warn=False)
    assert env.action_space.shape == (23,) and len(CONTROLS) == 23
    assert env.observation_space.shape == (N_FEATURES + 23,)


def test_every_control_changes_the_next_observation() -> None:
    env = MobiusVortexEnv()
    env.reset(seed=3)
    base = np.zeros(23, dtype=np.float32)
    # pair seeding is a Poisson process: from rate 0 to the largest rate (P(no pair in the
    # 10 simulator steps) ≈ 0.11; the seeded run does seed one)
    base[[c.name for c in CONTROLS].index("pair_seeding")] = -1.0
    for _ in range(3):  # develop some vortices for the annihilation controls to act on
        env.step(base)
    state = env.state_dict()
    obs_base = [env.step(base)[0] for _ in range(2)][-1]
    psi_base = env.core.sim.psi.clone()
    unchanged = []
    for k, control in enumerate(CONTROLS):
        env.load_state_dict(state)
        action = base.copy()
        action[k] = 1.0
        obs = [env.step(action)[0] for _ in range(2)][-1]
        # the physics part of the observation and the field itself must both change
        if np.array_equal(obs[:N_FEATURES], obs_base[:N_FEATURES]) or torch.equal(
            env.core.sim.psi, psi_base
        ):
            unchanged.append(control.name)
    assert unchanged == []


def test_rewards_are_bounded_and_every_term_is_logged() -> None:
    env = MobiusVortexEnv(_cfg(horizon=6))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(6):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 23))
        assert set(info["reward_terms"]) == {"density", "order", "persistence", "quality"}
        assert all(0.0 <= v <= 1.0 for v in info["reward_terms"].values())
        assert (0.0 <= reward <= 1.0) or (terminated and reward == -1.0)
        assert set(info["params"]) == {c.name for c in CONTROLS}
    assert truncated and not terminated


def test_collapsed_field_scores_the_failure_reward_and_terminates() -> None:
    env = MobiusVortexEnv(_cfg(horizon=200))
    env.reset(seed=1)
    action = np.zeros(23)
    names = [c.name for c in CONTROLS]
    action[names.index("damping")] = 1.0  # γ = 1.5: decay rate 0.5
    action[names.index("source_amplitude")] = -1.0  # no sources
    action[names.index("noise_temperature")] = -1.0  # no noise
    action[names.index("pair_seeding")] = -1.0
    rewards = []
    for _ in range(200):
        _, reward, terminated, _, info = env.step(action)
        rewards.append(reward)
        if terminated:
            break
    assert terminated
    assert rewards[-1] == -1.0
    assert TERMINATION_REASONS[info["termination"]] == "collapsed"
    assert max(rewards) <= 1.0


def test_numerical_blow_up_terminates_with_a_reason() -> None:
    env = MobiusVortexEnv()
    env.reset(seed=0)
    env.core.sim.psi = env.core.sim.psi * 1e19  # |ψ|²ψ overflows float32 at once
    _, reward, terminated, truncated, info = env.step(np.zeros(23))
    assert terminated and not truncated
    assert reward == -1.0
    assert TERMINATION_REASONS[info["termination"]] == "unstable"


def test_vector_env_autoresets_and_reports_final_observations() -> None:
    envs = MobiusVortexVecEnv(_cfg(horizon=3), num_envs=3)
    obs, _ = envs.reset(seed=5)
    assert obs.shape == (3, N_FEATURES + 23) and obs.dtype == np.float32
    for _ in range(3):
        obs, _, term, trunc, info = envs.step(np.zeros((3, 23), dtype=np.float32))
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all()
    assert np.allclose(info["final_obs"][:, N_FEATURES - 1], 1.0)  # episode progress 3/3
    assert np.allclose(obs[:, N_FEATURES - 1], 0.0)  # the reset observation
    assert set(info["vortex"]) >= {"density", "null_density", "count"}


def test_vector_env_state_dict_continues_exactly() -> None:
    envs = MobiusVortexVecEnv(_cfg(horizon=4), num_envs=2)
    envs.reset(seed=2)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (6, 2, 23)).astype(np.float32)
    envs.step(actions[0])
    state = envs.state_dict()
    first = [envs.step(a) for a in actions[1:]]
    other = MobiusVortexVecEnv(_cfg(horizon=4), num_envs=2)
    other.load_state_dict(state)
    second = [other.step(a) for a in actions[1:]]
    for (o1, r1, *_), (o2, r2, *_) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)


def test_make_vector_env_builds_the_mobius_env_from_config() -> None:
    envs = make_vector_env(default_env_config(), num_envs=2, seed=0)
    assert isinstance(envs, MobiusVortexVecEnv) and envs.num_envs == 2


def test_single_strip_lattice_is_rejected_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=r"lattice.strips = 1: .* at least 2 strips"):
        MobiusVortexEnv(HHmLConfig())


def test_unstable_time_step_over_the_control_box_is_a_config_error() -> None:
    cfg = default_env_config()
    cfg = dataclasses.replace(cfg, simulation=cfg.simulation.replace(dt=1.0))
    with pytest.raises(ConfigError, match=r"simulation.dt = 1 is not stable over the control"):
        MobiusVortexEnv(cfg)


def test_control_map_is_affine_with_integer_winding_and_validated_ranges() -> None:
    cfg = default_env_config()
    cmap = ControlMap(cfg)
    lo, hi = cmap.to_values(-np.ones((1, 23)))[0], cmap.to_values(np.ones((1, 23)))[0]
    np.testing.assert_allclose(lo, cmap.low)
    np.testing.assert_allclose(hi, cmap.high)
    mid = cmap.to_values(np.full((1, 23), 0.3))[0]
    k = [c.name for c in CONTROLS].index("damping")
    assert mid[k] == pytest.approx(cmap.low[k] + 0.65 * (cmap.high[k] - cmap.low[k]))
    m = [c.name for c in CONTROLS].index("boundary_winding")
    assert mid[m] == round(mid[m])
    bad = load_config(None, ["controls.damping_low=-0.5", "controls.damping_high=3"])
    with pytest.raises(
        ConfigError, match=r"controls.damping_low = -0.5 is outside .* dynamics.damping"
    ):
        ControlMap(bad)
    bad = load_config(None, ["controls.kappa_low=1.5", "controls.kappa_high=1.5"])
    with pytest.raises(ConfigError, match=r"controls.kappa_low = 1.5 must be smaller"):
        ControlMap(bad)


def test_environment_doc_lists_every_control_range_and_feature() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "environment.md").read_text(encoding="utf-8")
    cfg = default_env_config()
    for k, c in enumerate(CONTROLS, 1):
        lo = getattr(cfg.controls, f"{c.name}_low")
        hi = getattr(cfg.controls, f"{c.name}_high")
        assert f"| {k} | {c.category} | `{c.section}.{c.name}`" in doc
        assert f"[{lo:g}, {hi:g}]" in doc
    for k, (name, _) in enumerate(OBSERVATION_FEATURES):
        assert f"| {k} | `{name}` |" in doc
