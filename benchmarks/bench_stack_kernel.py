"""One RK4 step on a batched Möbius-strip ensemble: eager torch vs the fused C++ kernel.

The problem is the RL environment's: ``B`` stacks of ``S = 2`` embedded 48 × 12 strips
(:class:`~hhml.core.mobius.LatticeEnsemble`, per-env geometry and twist) with per-env
:class:`~hhml.config.FieldParams` that switch every term on (spectral filter, boundary
sources, pinning, inter-strip coupling). Contenders, interleaved in one process and
checked against each other before timing:

- ``Simulator RK4.step`` — what :class:`~hhml.core.resonance.Simulator` runs today;
- ``eager reference`` — :func:`~hhml.core.resonance.stack_kernel.stack_rk4_step_reference`;
- ``C++ kernel`` — :func:`~hhml.core.resonance.stack_kernel.cpp_stack_rk4_step`.

Prints medians (and best) in ms per step and the speed-up eager / kernel.

Usage::

    python benchmarks/bench_stack_kernel.py [--batch 1 128] [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hhml.config import FieldParams
from hhml.core.mobius import LatticeEnsemble
from hhml.core.resonance import Simulator
from hhml.core.resonance.stack_kernel import (
    STACK_STATUS,
    cpp_stack_rk4_step,
    stack_rk4_step_reference,
)


def build(batch: int, dtype: torch.dtype, seed: int = 0) -> tuple[Simulator, dict[str, Any]]:
    """A simulator on a per-env ensemble and the matching kernel keyword arguments."""
    rng = np.random.default_rng(seed)
    ens = LatticeEnsemble(
        batch,
        2,
        48,
        12,
        aspect=rng.uniform(6.0, 12.0, batch).tolist(),
        kappa=rng.uniform(0.8, 1.8, batch).tolist(),
        delta=rng.uniform(-0.4, 0.4, batch).tolist(),
        coupling_range=rng.uniform(0.5, 2.0, batch).tolist(),
        twist=rng.uniform(-3.0, 3.0, batch).tolist(),
        strip_spacing=2.0,
        edge="neumann",
        metric="embedded",
        dtype=dtype,
    )
    params = [
        FieldParams(
            damping=float(rng.uniform(0.0, 0.5)),
            diffusion=float(rng.uniform(0.005, 0.05)),
            dispersion=float(rng.uniform(-0.05, 0.05)),
            nonlinearity=float(rng.uniform(0.5, 2.0)),
            nonlinear_frequency=float(rng.uniform(-1.0, 1.0)),
            spectral_filter=float(rng.uniform(0.0, 1e-5)),
            source_amplitude=float(rng.uniform(0.0, 1.0)),
            source_frequency=float(rng.uniform(-2.0, 2.0)),
            coupling=float(rng.uniform(0.0, 1.0)),
            pinning=float(rng.uniform(0.0, 1.0)),
        )
        for _ in range(batch)
    ]
    sim = Simulator(ens, params, dt=0.05, seed=seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    c = sim.equation.coefficients
    kwargs = dict(
        coefficients=tuple(x.to(real).contiguous() for x in ens._coef64),
        seam_phase=ens.seam_phase.to(dtype),
        growth=c.growth,
        diffusion=c.diffusion,
        cubic=c.cubic,
        filter=c.filter,
        frequency=c.frequency,
        coupling=c.coupling,
        weights=ens.coupling_weights(),
        potential=sim.equation.potential,
        source=sim.equation.source,
        flip=ens.strip.flip,
        periodic_v=ens.strip.periodic_v,
        ghost_sign=ens.strip.ghost_sign,
    )
    return sim, kwargs


def time_case(batch: int, dtype: torch.dtype, repeats: int) -> dict[str, list[float]]:
    """Seconds per RK4 step of each contender, interleaved, after checking their results."""
    sim, kw = build(batch, dtype)
    psi, t, dt = sim.psi.contiguous(), 0.7, sim.dt
    contenders: dict[str, Callable[[], Tensor | None]] = {
        "sim": lambda: sim.integrator.step(psi, t, dt),
        "ref": lambda: stack_rk4_step_reference(psi, t, dt, **kw),
        "cpp": lambda: cpp_stack_rk4_step(psi, t, dt, **kw),
    }
    outs = {k: f() for k, f in contenders.items()}
    if outs["cpp"] is None:
        raise SystemExit(f"kernel unavailable: {STACK_STATUS.last_skip}")
    ref = outs["ref"]
    assert ref is not None
    scale = float((ref - psi).abs().max())
    for name in ("sim", "cpp"):
        out = outs[name]
        assert out is not None
        err = float((out - ref).abs().max()) / scale
        if err > (1e-5 if dtype == torch.complex64 else 1e-13):
            raise SystemExit(f"{name} differs from the reference by {err:.2e}")
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, f in contenders.items():  # interleaved
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; one RK4 step, S = 2, 48 × 12, medians (best) ms"
    )
    print("| B | dtype | Simulator RK4.step | eager reference | C++ kernel | eager / kernel |")
    print("|---|---|---|---|---|---|")
    for batch in args.batch:
        for dtype in (torch.complex64, torch.complex128):
            times = time_case(batch, dtype, args.repeats)
            med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
            best = {k: 1e3 * float(np.min(v)) for k, v in times.items()}
            cells = " | ".join(f"{med[k]:.3f} ({best[k]:.3f})" for k in ("sim", "ref", "cpp"))
            name = str(dtype).replace("torch.", "")
            print(f"| {batch} | {name} | {cells} | {med['ref'] / med['cpp']:.1f}× |")


if __name__ == "__main__":
    main()
