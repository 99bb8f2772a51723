"""The batched env as device-native tensor code: no host synchronisation inside a step,
per-env and per-rank seeds, masked resets, tensor-level input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hhml.config.schema import HHmLConfig
from hhml.core.resonance.noise_kernel import NOISE_STATUS, cpp_noise_add
from hhml.core.resonance.stochastic import NoiseIncrement
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


def test_smallest_stable_is_the_prefix_of_a_stable_sort() -> None:
    """The top-m selection of the annihilation targets (topk + scatter) against
    ``torch.sort(stable=True)``: ties (including −0.0 = 0.0) and +inf keep column order."""
    from hhml.ml.env.annihilation import _smallest_stable

    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        B, n = (int(x) for x in torch.randint(1, 40, (2,), generator=gen))
        m = int(torch.randint(1, n + 1, (1,), generator=gen))
        key = torch.randint(0, 4, (B, n), generator=gen).to(torch.float64)
        key[torch.rand(B, n, generator=gen) < 0.3] = float("inf")
        key[torch.rand(B, n, generator=gen) < 0.2] = -0.0
        expected = torch.sort(key, dim=1, stable=True).indices[:, :m]
        assert torch.equal(_smallest_stable(key, m), expected)


def _noisy_core(dtype: str) -> MobiusVortexCore:
    cfg = default_env_config()
    cfg = dataclasses.replace(cfg, simulation=cfg.simulation.replace(dtype=dtype))
    core = MobiusVortexCore(cfg, 3)
    core.reset()
    core.step(torch.full((3, 23), 0.5, dtype=torch.float64))  # noise temperature > 0
    assert core.sim.equation.coefficients.use_noise
    return core


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_cpu_noise_is_the_philox_stream_of_one_key_from_the_generator(dtype: str) -> None:
    """The in-place noise of Simulator.advance_by on the CPU (NoiseIncrement → C++ kernel):
    one 64-bit key drawn from the simulator's generator, then ``psi + (noise·√dt)·ξ`` with
    ξ the kernel's stream of that key — bit for bit, in place or not, and the generator
    advanced by exactly that one draw (so snapshots and checkpoints resume exactly)."""
    core = _noisy_core(dtype)
    sim = core.sim
    dt = sim.dt
    amplitude = sim.equation.coefficients.noise
    twin = torch.Generator().manual_seed(0)
    twin.set_state(sim.generator.get_state())
    key = torch.empty(1, dtype=torch.int64).random_(-(2**63), None, generator=twin)
    psi = sim.psi.clone()
    expected = cpp_noise_add(psi, amplitude.reshape(3), dt**0.5, key, False)
    assert expected is not None, NOISE_STATUS.last_skip
    state = sim.generator.get_state()
    noise_step = NoiseIncrement()
    out = noise_step.apply(psi.clone(), amplitude, dt, sim.generator, in_place=False)
    assert torch.equal(out, expected)
    sim.generator.set_state(state)
    out = noise_step.apply(psi.clone(), amplitude, dt, sim.generator, in_place=True)
    assert torch.equal(out, expected)
    assert torch.equal(sim.generator.get_state(), twin.get_state())  # one draw


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_torch_noise_path_draws_the_numbers_of_torch_randn(dtype: str) -> None:
    """The device path (CUDA, or the kernel disabled): the same numbers as
    ``psi + (noise·√dt)·torch.randn(...)`` from the same generator state (bit for bit)."""
    core = _noisy_core(dtype)
    sim = core.sim
    dt = sim.dt
    twin = torch.Generator().manual_seed(0)
    twin.set_state(sim.generator.get_state())
    psi = sim.psi.clone()
    noise = torch.randn(psi.shape, dtype=psi.dtype, generator=twin)
    expected = psi + (sim.equation.coefficients.noise * dt**0.5) * noise
    state = sim.generator.get_state()
    amplitude = sim.equation.coefficients.noise
    noise_step = NoiseIncrement()
    out = noise_step.apply_torch(psi.clone(), amplitude, dt, sim.generator, in_place=False)
    assert torch.equal(out, expected)
    sim.generator.set_state(state)
    out = noise_step.apply_torch(psi.clone(), amplitude, dt, sim.generator, in_place=True)
    assert torch.equal(out, expected)
    assert torch.equal(sim.generator.get_state(), twin.get_state())  # as many draws


def test_annihilation_kernel_path_matches_the_device_path() -> None:
    """annihilate() on the CPU (C++ kernel: rows below the bound left out, field multiplied in
    place of the angle tensor) against the device code path (dense torch imprints).
    Measured: 1.6e-7 of max |psi| (complex64); tolerance 1.5e-6."""
    from hhml.config.controls import CONTROL_INDEX
    from hhml.ml.env.annihilation import annihilate

    core = MobiusVortexCore(default_env_config(), 4)
    core.seed(1)
    core.reset()
    gen = torch.Generator().manual_seed(3)
    for _ in range(2):
        core.step(torch.rand(4, 23, generator=gen, dtype=torch.float64) * 2 - 1)
    v = core.state.values.clone()
    v[:, CONTROL_INDEX["antivortex_strength"]] = 0.9
    v[:, CONTROL_INDEX["preserve_ratio"]] = 0.0
    v[:, CONTROL_INDEX["quality_threshold"]] = 0.0
    names = ("antivortex_strength", "annihilation_radius", "quality_threshold", "preserve_ratio")
    args = [v[:, CONTROL_INDEX[k]] for k in names]
    vort = core.state.vortices
    assert vort is not None
    psi = core.sim.psi
    host, n_host = annihilate(psi, core.lattice.strip, vort, *args, max_targets=8)
    with forbid_host_sync():
        dense, n_dense = annihilate(psi, core.lattice.strip, vort, *args, max_targets=8)
    assert torch.equal(n_host, n_dense) and int(n_host.sum()) > 0
    assert float((host - dense).abs().max()) <= 1.5e-6 * float(psi.abs().max())


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128, torch.float32])
def test_finite_per_env_agrees_with_isfinite_on_every_kind_of_entry(dtype: torch.dtype) -> None:
    """The env's failure check (one multiply and one sum) against ``torch.isfinite``: NaN,
    ±inf in either part, and finite extremes (largest, subnormal, −0) that must pass."""
    from hhml.ml.env.core import finite_per_env

    real = torch.finfo(torch.empty(0, dtype=dtype).real.dtype)
    psi = torch.ones((7, 2, 3, 4), dtype=dtype)
    psi[1, 0, 1, 2] = float("nan")
    psi[2, 1, 2, 3] = float("inf")
    psi[3, 0, 0, 0] = -float("inf")
    psi[4, 0, 0, 0], psi[4, 1, 2, 3], psi[4, 1, 0, 0] = real.max, real.tiny / 4, -0.0
    psi[5, 0, 0, 0], psi[5, 0, 0, 1] = float("inf"), float("nan")
    if dtype.is_complex:
        psi[6, 1, 1, 1] = complex(1.0, float("nan"))
        psi[0, 0, 0, 0] = complex(-real.max, real.max)
    else:
        psi[6, 1, 1, 1] = -float("nan")
    expected = torch.isfinite(psi).flatten(1).all(dim=1)
    assert expected.tolist() == [True, False, False, False, True, False, False]
    assert torch.equal(finite_per_env(psi), expected)
