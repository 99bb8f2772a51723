"""The observation's declared ranges: the gymnasium Box, clipping, and rollouts inside it."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch

import hhml.ml.env  # noqa: F401  (registers the env)
from hhml.config import load_config
from hhml.ml.env import (
    CONTROLS,
    FEATURE_BOUNDS,
    OBSERVATION_FEATURES,
    SETPOINT_FEATURES,
    MobiusVortexCore,
)


def test_the_box_is_the_feature_bounds_then_the_controls() -> None:
    env = gym.make("hhml/MobiusVortex-v0", task="setpoint_density")
    space = env.observation_space
    assert isinstance(space, gym.spaces.Box)
    names = [n for n, _ in OBSERVATION_FEATURES]
    extra = [n for n, _ in SETPOINT_FEATURES]
    low = [FEATURE_BOUNDS[n][0] for n in names] + [-1.0] * len(CONTROLS)
    low += [FEATURE_BOUNDS[n][0] for n in extra]
    high = [FEATURE_BOUNDS[n][1] for n in names] + [1.0] * len(CONTROLS)
    high += [FEATURE_BOUNDS[n][1] for n in extra]
    np.testing.assert_array_equal(space.low, np.asarray(low, dtype=np.float32))
    np.testing.assert_array_equal(space.high, np.asarray(high, dtype=np.float32))
    assert space.shape == (len(names) + len(CONTROLS) + len(extra),)
    env.close()


def test_random_rollouts_stay_in_the_box_and_out_of_range_values_are_clipped() -> None:
    cfg = load_config("setpoint", ["env.num_envs=4"])
    core = MobiusVortexCore(cfg, 4)
    core.reset()
    low, high = core.observation_bounds()
    g = torch.Generator().manual_seed(0)
    for _ in range(12):
        core.step(torch.rand(4, 23, generator=g, dtype=torch.float64) * 2 - 1)
        obs = core.observation().numpy()
        assert np.all(obs >= low) and np.all(obs <= high)
    # a density above 1, a NaN and an infinite age: clipped to the range, NaN → 0
    measured = dict(core.state.measured)
    measured["vortex_density"] = torch.full_like(measured["vortex_density"], 5.0)
    measured["hexatic_order"] = torch.full_like(measured["hexatic_order"], float("nan"))
    measured["mean_age"] = torch.full_like(measured["mean_age"], float("inf"))
    core.state = dataclasses.replace(core.state, measured=measured)
    obs = core.observation().numpy()
    index = {n: i for i, (n, _) in enumerate(OBSERVATION_FEATURES)}
    assert np.all(obs[:, index["vortex_density"]] == 1.0)
    assert np.all(obs[:, index["hexatic_order"]] == 0.0)
    assert np.all(obs[:, index["log_mean_age"]] == np.float32(1e6))
