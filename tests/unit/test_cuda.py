"""CUDA-only tests: the same computation on a CUDA device and on the CPU agrees.

Every test here is marked ``cuda`` and skipped when ``torch.cuda.is_available()`` is false;
``benchmarks/device_check.py`` runs them (``pytest -m cuda -q tests/unit/test_cuda.py``) on a
GPU machine. The CPU result is the reference. Random numbers drawn on the device (the
simulator's noise, ``Simulator(initial="noise")``; once the env is device-native also its
initial field and pair seeding) differ between CPU and CUDA by design, so the tests copy
the CPU's initial field to the device, or start the env from a uniform field with the
noise temperature and pair seeding held at 0.

Tolerance: 1e-10 relative, the required CUDA/CPU agreement. Both sides compute in
complex128 and differ only by rounding (operation order, fused multiply-adds). As a proxy,
two CPU implementations of the same flat right-hand side (eager and the C++ kernel) differ
by 2.4e-16 after the 20 steps of :func:`test_flat_simulator_steps_cuda_match_cpu`; no GPU
run has been recorded yet, so the CUDA figure itself is not known here and the bound is
the requirement, not 10 × a measured error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance import Simulator
from hhml.ml.env import CONTROLS, MobiusVortexVecEnv, default_env_config

_REASON = (
    "needs a CUDA device: torch.cuda.is_available() is False "
    f"(torch {torch.__version__}, CUDA build {torch.version.cuda})"
)
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason=_REASON),
]

TOL = 1e-10
C128 = torch.complex128


def _rel(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """max |a − b| / max |b| (b is the CPU reference; 0 if both are all zero)."""
    x, y = np.asarray(a), np.asarray(b)
    scale = float(np.abs(y).max())
    diff = float(np.abs(x - y).max())
    return 0.0 if diff == 0.0 else diff / scale


def _rollout(
    device: str, actions: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    cfg = default_env_config()
    simulation = cfg.simulation.replace(dtype="complex128", initial="uniform")
    cfg = dataclasses.replace(cfg, simulation=simulation)
    env = MobiusVortexVecEnv(cfg, actions.shape[1], device)
    obs0, _ = env.reset(seed=3)
    obs, rewards, flags = [obs0], [], []
    for a in actions:
        o, r, term, trunc, _ = env.step(a)
        obs.append(o)
        rewards.append(r)
        flags.append(np.stack([term, trunc]))
    return np.stack(obs), np.stack(rewards), np.stack(flags)


def test_env_rollout_cuda_matches_cpu() -> None:
    """4 envs, 10 steps, complex128, seeded random actions; nothing random enters (uniform
    start, noise temperature and pair seeding held at 0: action −1)."""
    draws = np.random.default_rng(3).uniform(-1, 1, (10, 4, len(CONTROLS)))
    for name in ("noise_temperature", "pair_seeding"):
        draws[..., [c.name for c in CONTROLS].index(name)] = -1.0
    actions = draws.astype(np.float32)
    obs_cpu, rew_cpu, flags_cpu = _rollout("cpu", actions)
    obs_gpu, rew_gpu, flags_gpu = _rollout("cuda", actions)
    np.testing.assert_array_equal(flags_gpu, flags_cpu)
    # per observation feature, each on its own scale
    for j in range(obs_cpu.shape[-1]):
        assert _rel(obs_gpu[..., j], obs_cpu[..., j]) <= TOL, f"observation feature {j}"
    assert _rel(rew_gpu, rew_cpu) <= TOL


def _forced_params() -> FieldParams:
    """Every deterministic term on (sources, pinning, dispersion, filter); no noise and no
    pair seeding, whose draws come from the device's generator."""
    return FieldParams(
        damping=0.1,
        diffusion=0.02,
        dispersion=0.03,
        nonlinear_frequency=0.5,
        spectral_filter=1e-5,
        source_amplitude=0.2,
        source_frequency=0.7,
        source_spread=0.3,
        boundary_winding=2,
        pinning=0.3,
    )


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_flat_simulator_steps_cuda_match_cpu(compiled: bool) -> None:
    """Flat 64 × 16 Möbius strip, complex128, 20 RK4 steps: eager and inductor on CUDA."""

    def build(device: str, compiled_path: bool) -> Simulator:
        lat = MobiusStrip(64, 16, edge="neumann", twist=0.3, dtype=C128, device=device)
        return Simulator(lat, _forced_params(), dt=0.01, seed=5, compiled=compiled_path)

    cpu = build("cpu", False)  # eager reference (the C++ kernel would need a build)
    gpu = build("cuda", compiled)
    gpu.psi = cpu.psi  # the initial noise is drawn on each device's own generator
    cpu.step(20)
    gpu.step(20)
    assert _rel(gpu.psi.cpu().numpy(), cpu.psi.numpy()) <= TOL


def test_stack_simulator_steps_cuda_match_cpu() -> None:
    """Embedded stack of 3 strips (metric, inter-strip coupling), batch of 2, 20 RK4 steps."""

    def build(device: str) -> Simulator:
        stack = TokamakStack(
            3,
            24,
            8,
            kappa=1.4,
            delta=0.2,
            metric="embedded",
            aspect=10.0,
            dtype=C128,
            device=device,
        )
        params = [_forced_params(), dataclasses.replace(_forced_params(), coupling=0.2)]
        return Simulator(stack, params, dt=0.01, seed=7)

    cpu, gpu = build("cpu"), build("cuda")
    gpu.psi = cpu.psi
    cpu.step(20)
    gpu.step(20)
    assert _rel(gpu.psi.cpu().numpy(), cpu.psi.numpy()) <= TOL


def test_env_step_makes_no_device_synchronisation_on_cuda() -> None:
    """CUDA's own guard: any synchronising call in the step raises."""
    from hhml.ml.env import MobiusVortexCore

    core = MobiusVortexCore(default_env_config(), 64, "cuda")
    core.seed(0)
    core.reset()
    gen = torch.Generator(device="cuda").manual_seed(0)
    actions = torch.rand(4, 64, 23, generator=gen, device="cuda", dtype=torch.float64) * 2 - 1
    core.step(actions[0])  # lazy caches
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for a in actions[1:]:
            out = core.step(a)
            core.observation()
            core.reset(out.terminated | out.truncated)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


@pytest.mark.parametrize("algorithm", ["td3", "sac", "recurrent_td3"])
def test_training_step_makes_no_device_synchronisation_on_cuda(
    tmp_path: Path, algorithm: str
) -> None:
    """Act, env step with autoreset, store, update and bookkeeping of the trainer on
    CUDA under CUDA's own guard; the statistics reach the host only at the flush."""
    from hhml.config import load_config
    from hhml.ml.training.trainer import Trainer

    quickstart = Path(__file__).resolve().parents[2] / "configs/experiment/quickstart.yaml"
    overrides = [
        f"agent={algorithm}",
        "env.num_envs=64",
        "env.horizon=3",
        "agent.learning_starts=64",
        "agent.batch_size=32",
        "training.device=cuda",
        "training.progress_bar=false",
        "training.tensorboard=false",
    ]
    trainer = Trainer.create(load_config(quickstart, overrides), run_dir=tmp_path / "r")
    try:
        for _ in range(3):
            trainer._step()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(4):
                trainer._step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        trainer._flush_device_stats()
        assert trainer.state.episodes == 128  # 64 envs, episodes ending at steps 3 and 6
    finally:
        trainer.close()
