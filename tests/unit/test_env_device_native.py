"""The batched env as device-native tensor code: no host synchronisation inside a step,
per-env and per-rank seeds, masked resets, tensor-level input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hhml.config.schema import HHmLConfig
from hhml.errors import CheckpointError, ConfigError
from hhml.ml.env import CONTROLS, MobiusVortexCore, default_env_config, make_vector_env
from hhml.ml.training.distributed import DistContext
from hhml.ml.training.trainer import first_observation
from hhml.utils.host_sync import HostSyncError, forbid_host_sync

NAMES = [c.name for c in CONTROLS]


def _cfg(**env: object) -> HHmLConfig:
    cfg = default_env_config()
    return dataclasses.replace(cfg, env=cfg.env.replace(**env))


def test_the_guard_catches_each_kind_of_host_synchronisation() -> None:
    x = torch.ones(3)
    for sync in (
        lambda: x.sum().item(),
        lambda: x.cpu(),
        lambda: x.numpy(),
        lambda: x.tolist(),
        lambda: bool(x.sum() > 0),
        lambda: float(x.sum()),
        lambda: torch.nonzero(x),
    ):
        with forbid_host_sync(), pytest.raises(HostSyncError):
            sync()
    assert x.sum().item() == 3.0  # restored afterwards


def test_step_observation_and_masked_reset_make_no_host_synchronisation() -> None:
    core = MobiusVortexCore(_cfg(horizon=3), 3)
    core.seed(0)
    core.reset()
    gen = torch.Generator().manual_seed(0)
    actions = torch.rand(4, 3, 23, generator=gen, dtype=torch.float64) * 2 - 1
    actions[:, :, NAMES.index("pair_seeding")] = 1.0  # seed pairs: the masked path runs
    core.step(actions[0])  # first call builds the lazy caches (kernels, profiles)
    truncated = []
    with forbid_host_sync():
        for a in actions[1:]:
            out = core.step(a)
            obs = core.observation()
            core.info(out)
            core.reset(out.terminated | out.truncated)
            truncated.append(out.truncated)
    assert obs.shape == (3, core.obs_dim) and obs.dtype == torch.float32
    # horizon 3: the second guarded step truncated every env, and the reset ran in the guard
    assert [bool(t.all()) for t in truncated] == [False, True, False]
    assert core.state.elapsed.tolist() == [1, 1, 1]


def _first_two_observations(seed: int) -> np.ndarray:
    envs = make_vector_env(default_env_config(), num_envs=2, seed=seed)
    obs, _ = envs.reset()
    nxt = envs.step(np.zeros((2, 23), dtype=np.float32))[0]
    return np.stack([obs, nxt])


def test_vector_envs_built_with_different_seeds_differ_and_equal_seeds_agree() -> None:
    a, b, c = (_first_two_observations(s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], c[0]) and not np.allclose(a[1], c[1])
    assert not np.allclose(a[0, 0], a[0, 1])  # the two envs of one batch differ too


def test_two_ranks_start_from_different_observations() -> None:
    cfg = default_env_config()
    cfg = dataclasses.replace(cfg, env=cfg.env.replace(num_envs=2))
    first = []
    for rank in (0, 1):
        envs = make_vector_env(cfg, num_envs=2, seed=0)
        first.append(first_observation(envs, cfg, DistContext(rank=rank, world_size=2)))
    assert not np.allclose(first[0], first[1])


def test_reset_mask_leaves_the_other_envs_untouched() -> None:
    core = MobiusVortexCore(default_env_config(), 3)
    core.seed(4)
    core.reset()
    core.step(torch.zeros(3, 23, dtype=torch.float64))
    psi = core.sim.psi.clone()
    values = core.state.values.clone()
    core.reset(torch.tensor([False, True, False]))
    assert torch.equal(core.sim.psi[[0, 2]], psi[[0, 2]])
    assert not torch.equal(core.sim.psi[1], psi[1])
    assert torch.equal(core.state.values[[0, 2]], values[[0, 2]])
    assert core.state.elapsed.tolist() == [1, 0, 1]


def test_bad_tensor_actions_get_a_config_error_naming_the_problem() -> None:
    core = MobiusVortexCore(default_env_config(), 2)
    core.reset()
    with pytest.raises(ConfigError, match=r"shape \(2, 22\); expected \(2, 23\)"):
        core.step(torch.zeros(2, 22))
    with pytest.raises(ConfigError, match=r"dtype torch\.int64"):
        core.step(torch.zeros(2, 23, dtype=torch.int64))
    with pytest.raises(ConfigError, match="is on meta"):
        core.step(torch.zeros(2, 23, device="meta"))
    envs = make_vector_env(default_env_config(), num_envs=2, seed=0)
    envs.reset()
    bad = np.zeros((2, 23))
    bad[1, 4] = np.nan
    with pytest.raises(ConfigError, match="NaN or Inf"):
        envs.step(bad)


def test_an_env_state_of_the_per_env_layout_gets_a_checkpoint_error() -> None:
    core = MobiusVortexCore(default_env_config(), 2)
    old_layout = {"values": torch.zeros(2, 23), "elapsed": torch.zeros(2), "rngs": []}
    with pytest.raises(CheckpointError, match="older HHmL version"):
        core.load_state_dict(old_layout)
