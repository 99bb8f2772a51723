"""The set-point task ``env.task = setpoint_density``: per-episode target sequences drawn
on the device, the reward against the set-point in force, the observation that carries
it, masked resets, checkpoints and the gymnasium API."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from hhml.config.env import EnvConfig
from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.env import MobiusVortexCore, MobiusVortexEnv, default_env_config
from hhml.ml.env.core import OBSERVATION_FEATURES, SETPOINT_FEATURES
from hhml.ml.env.rewards import combine, reward_terms
from hhml.utils.host_sync import forbid_host_sync

#: Index of the three set-point entries of an observation (after 13 features, 23 controls).
TARGET, ERROR, TO_SWITCH = (len(OBSERVATION_FEATURES) + 23 + k for k in range(3))


def _cfg(**env: object) -> HHmLConfig:
    cfg = default_env_config()
    base = {"task": "setpoint_density", "horizon": 10, "setpoint_count": 3}
    return dataclasses.replace(cfg, env=cfg.env.replace(**{**base, **env}))


def _scaled(target: float, low: float = 0.02, high: float = 0.14) -> float:
    """The observation's set-point entry: ``[setpoint_low, setpoint_high]`` → [−1, 1]."""
    return (target - (low + high) / 2) / ((high - low) / 2)


def _core(num_envs: int = 3, seed: int = 5, **env: object) -> MobiusVortexCore:
    core = MobiusVortexCore(_cfg(**env), num_envs)
    core.seed(seed)
    core.reset()
    return core


def test_the_sequence_follows_an_independent_draw_from_the_seeded_stream() -> None:
    core = _core(num_envs=4, seed=11)
    env = core.cfg.env
    # reference: the reset draws the noise field first, then the K values, then one
    # uniform per step 1 … horizon − 1 whose K − 1 smallest pick the switch steps
    gen = torch.Generator().manual_seed(11)
    torch.randn(core.sim.psi.shape, dtype=core.sim.psi.dtype, generator=gen)
    u = torch.rand((4, 3), dtype=torch.float64, generator=gen)
    order = torch.rand((4, env.horizon - 1), dtype=torch.float64, generator=gen)
    expected = env.setpoint_low + (env.setpoint_high - env.setpoint_low) * u
    steps = [sorted((torch.argsort(row)[:2] + 1).tolist()) for row in order]
    torch.testing.assert_close(core.state.targets, expected, rtol=0, atol=0)
    assert core.state.switches.tolist() == [[0, *s] for s in steps]


def test_the_sequence_is_reproducible_for_a_seed_and_differs_between_envs() -> None:
    a, b, c = (_core(num_envs=4, seed=s).state for s in (7, 7, 8))
    assert torch.equal(a.targets, b.targets) and torch.equal(a.switches, b.switches)
    assert not torch.equal(a.targets, c.targets)
    assert len({tuple(row) for row in a.targets.tolist()}) == 4  # the envs differ
    assert ((a.targets >= 0.02) & (a.targets <= 0.14)).all()  # env.setpoint_low/high
    s = a.switches
    assert (s[:, 0] == 0).all() and (s[:, 1:] > s[:, :-1]).all() and (s[:, 1:] <= 9).all()


def test_the_reward_is_the_closed_form_against_the_set_point_in_force() -> None:
    core = _core(num_envs=2, seed=3)
    # hand-set sequences: env 0 switches from 0.05 to 0.10 after its first step
    core.state.targets = torch.tensor([[0.05, 0.10, 0.12], [0.02, 0.03, 0.04]], dtype=torch.float64)
    core.state.switches = torch.tensor([[0, 1, 5], [0, 2, 3]])
    sigma, w = core.cfg.env.density_tolerance, core.cfg.env.quality_weight
    for target in ([0.05, 0.02], [0.10, 0.02], [0.10, 0.03]):
        obs = core.observation()
        before = core.state.measured["vortex_density"].numpy()
        # the observation is float32: measured differences 2.0e-8 (set-point) and 4.3e-7
        # (error, O(1) values), tolerances 10x that
        np.testing.assert_allclose(obs[:, TARGET].numpy(), [_scaled(t) for t in target], atol=2e-7)
        error = np.clip((before - np.asarray(target)) / sigma, -10, 10)
        np.testing.assert_allclose(obs[:, ERROR].numpy(), error, atol=4e-6)
        out = core.step(torch.zeros(2, 23))
        m = core.state.measured
        for i in range(2):
            rho, q = float(m["vortex_density"][i]), float(m["core_depth"][i])
            ref = (1 - w) * math.exp(-(((rho - target[i]) / sigma) ** 2)) + w * min(max(q, 0), 1)
            # float64 on both sides: measured difference 0; tolerance a few ulps
            assert float(out.reward[i]) == pytest.approx(ref, rel=1e-15, abs=0)
        torch.testing.assert_close(out.target, torch.tensor(target, dtype=torch.float64))


def test_reward_terms_take_a_per_env_target() -> None:
    cfg = EnvConfig(density_tolerance=0.02, quality_weight=0.25)
    rho = torch.tensor([0.03, 0.05], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    quality = torch.tensor([0.4, 0.8], dtype=torch.float64)
    target = torch.tensor([0.03, 0.09], dtype=torch.float64)
    terms = reward_terms(cfg, rho, zero, zero, quality, target)
    total = combine(cfg, terms, torch.zeros(2, dtype=torch.bool))
    # exp(0) = 1 and exp(−(0.04/0.02)²) = exp(−4), by hand; measured relative difference
    # 1.3e-16, tolerance 10x
    ref = [0.75 * 1.0 + 0.25 * 0.4, 0.75 * math.exp(-4.0) + 0.25 * 0.8]
    np.testing.assert_allclose(total.numpy(), ref, rtol=1.5e-15)


def test_the_observation_carries_the_set_point_and_the_steps_to_the_next_switch() -> None:
    core = _core(num_envs=1, seed=2, horizon=10)
    core.state.targets = torch.tensor([[0.02, 0.06, 0.04]], dtype=torch.float64)
    core.state.switches = torch.tensor([[0, 3, 7]])
    assert core.obs_dim == len(OBSERVATION_FEATURES) + 23 + len(SETPOINT_FEATURES)
    seen = []
    for _ in range(9):
        obs = core.observation()[0]
        seen.append((round(float(obs[TARGET]), 6), round(float(obs[TO_SWITCH]) * 10)))
        core.step(torch.zeros(1, 23))
    # steps 0–2 under 0.02, 3–6 under 0.06, 7–9 under 0.04 (the episode ends at 10)
    a, b, c = (round(_scaled(t), 6) for t in (0.02, 0.06, 0.04))
    assert seen == [
        (a, 3), (a, 2), (a, 1), (b, 4), (b, 3), (b, 2), (b, 1), (c, 3), (c, 2)
    ]  # fmt: skip


def test_a_masked_reset_draws_new_set_points_for_the_masked_envs_only() -> None:
    core = _core(num_envs=3, seed=4)
    before = core.state.targets.clone(), core.state.switches.clone()
    core.step(torch.zeros(3, 23))
    core.reset(torch.tensor([False, True, False]))
    targets, switches = core.state.targets, core.state.switches
    assert torch.equal(targets[[0, 2]], before[0][[0, 2]])
    assert torch.equal(switches[[0, 2]], before[1][[0, 2]])
    assert not torch.equal(targets[1], before[0][1])
    assert core.state.elapsed.tolist() == [1, 0, 1]


def test_step_and_masked_reset_make_no_host_synchronisation() -> None:
    core = _core(num_envs=2, seed=0, horizon=2, setpoint_count=2)
    core.step(torch.zeros(2, 23))  # builds the lazy caches
    with forbid_host_sync():
        for _ in range(2):
            out = core.step(torch.zeros(2, 23))
            core.observation()
            core.info(out)
            core.reset(out.terminated | out.truncated)
    # the first guarded step truncated both envs (horizon 2) and reset them in the guard
    assert core.state.elapsed.tolist() == [1, 1]


def test_a_checkpoint_restores_the_set_points_and_continues_exactly() -> None:
    core = _core(num_envs=2, seed=9)
    core.step(torch.zeros(2, 23))
    saved = core.state_dict()
    other = _core(num_envs=2, seed=1)
    other.load_state_dict(saved)
    assert torch.equal(other.state.targets, core.state.targets)
    assert torch.equal(other.state.switches, core.state.switches)
    action = torch.full((2, 23), 0.3)
    for _ in range(3):
        a, b = core.step(action), other.step(action)
        assert torch.equal(a.reward, b.reward)
        assert torch.equal(core.observation(), other.observation())
    del saved["state"]["targets"]
    with pytest.raises(CheckpointError, match="set-points"):
        other.load_state_dict(saved)


def test_fixed_goal_tasks_keep_their_observation_and_target() -> None:
    cfg = default_env_config()
    core = MobiusVortexCore(cfg, 2)
    assert core.obs_dim == len(OBSERVATION_FEATURES) + 23
    assert core.state.targets.tolist() == [[cfg.env.target_density]] * 2


def test_the_set_point_range_and_count_are_checked() -> None:
    task = "setpoint_density"
    with pytest.raises(ConfigError, match=r"setpoint_low = 0\.1 ≥ env\.setpoint_high = 0\.05"):
        EnvConfig(task=task, setpoint_low=0.1, setpoint_high=0.05)
    with pytest.raises(ConfigError, match=r"setpoint_count = 5 > env\.horizon = 4"):
        EnvConfig(task=task, horizon=4, setpoint_count=5)
    # other tasks do not use the set-point fields: a short horizon is fine there
    assert EnvConfig(horizon=2).setpoint_count == 3


def test_the_gymnasium_env_passes_the_env_checker() -> None:
    env = gym.make("hhml/MobiusVortex-v0", task="setpoint_density", horizon=6, **{"lattice.nu": 24})
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (len(OBSERVATION_FEATURES) + 23 + 3,)
    assert isinstance(env.unwrapped, MobiusVortexEnv)
