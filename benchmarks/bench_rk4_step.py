"""One RK4 step: fused steps (stage combinations inside the stencil passes) vs the unfused
RK4 (a right-hand side per stage, the combinations as torch axpys), interleaved in one
process, medians over rounds, 2 threads; prints ms per step, the ratios and the largest
relative difference of the fields after the timed steps.

Flat strips (torus, every case): the fused C++ step vs the previous path (the C++
right-hand side with the stage combinations in torch). At 256² and 512² complex128 also
the compiled (inductor) fused step of :mod:`hhml.core.resonance.compiled_rk4` vs the
compiled right-hand side of :mod:`hhml.core.resonance.flat_kernels` with the combinations
in torch. Stacks (the env's case: ``--stack-batch`` envs × 2 embedded 48 × 12 strips,
per-env parameters, every term on, complex64): the eager torch RK4
(``stack_rk4_step_reference``), the same right-hand side compiled alone with the
combinations in torch, the C++ kernel and the compiled fused step.

On a CPU the C++ kernels stay the default; the compiled steps are the path for CUDA, and
these CPU inductor figures are the evidence for fusing them. Compiling each new shape takes
a minute or more on a small CPU (printed; not part of the timings).

Usage::

    python benchmarks/bench_rk4_step.py [--rounds 5] [--stack-batch 128] [--threads 2]
        [--no-compiled] [--no-flat]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from bench_stack_kernel import build as build_stack
from torch import Tensor

from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator
from hhml.core.resonance.compiled_rk4 import (
    RK4_COMPILE_STATUS,
    _compiled_stack_rhs,
    compiled_flat_rk4_step,
    compiled_stack_rk4_step,
)
from hhml.core.resonance.flat_kernels import flat_cgl_rhs
from hhml.core.resonance.stack_kernel import cpp_stack_rk4_step, stack_rk4_step_reference

# (n, dt, dtype, steps per round, compiled contenders)
CASES = (
    (256, 4e-4, torch.complex128, 40, True),
    (512, 1e-4, torch.complex128, 20, True),
    (2048, 5e-6, torch.complex64, 4, False),
)
Step = Callable[[Tensor, float], Tensor]


def torch_rk4(f: Callable[[Tensor, float], Tensor], dt: float) -> Step:
    """The unfused RK4 of ``f`` (as ``RK4.step`` writes it without a fused kernel)."""

    def step(psi: Tensor, t: float) -> Tensor:
        k = f(psi, t)
        acc = k.clone()
        k = f(torch.add(psi, k, alpha=0.5 * dt), t + 0.5 * dt)
        acc.add_(k, alpha=2.0)
        k = f(torch.add(psi, k, alpha=0.5 * dt), t + 0.5 * dt)
        acc.add_(k, alpha=2.0)
        k = f(torch.add(psi, k, alpha=dt), t + dt)
        acc.add_(k)
        return torch.add(psi, acc, alpha=dt / 6.0)

    return step


def flat_contenders(sim: Simulator, compiled: bool) -> dict[str, Step]:
    dt, chart = sim.dt, sim.chart
    lattice = dict(topology=chart.topology, edge=chart.edge, twist=chart.twist)
    spacing = dict(du=chart.du, dv=chart.dv)

    def fused_cpp(psi: Tensor, t: float) -> Tensor:
        out = sim.equation.fused_rk4_step(psi, t, dt)
        assert out is not None
        return out

    steps: dict[str, Step] = {
        "C++ rhs + torch combos": torch_rk4(sim.equation.rhs_unchecked, dt),
        "fused C++": fused_cpp,
    }
    if not compiled:
        return steps

    def compiled_rhs(psi: Tensor, t: float) -> Tensor:
        source = sim.equation.source_at(t)
        return flat_cgl_rhs(
            psi,
            **lattice,
            **spacing,
            potential=sim.equation.potential,
            source=source,
            compiled=True,
            **sim.equation.raw,
        )

    def fused_compiled(psi: Tensor, t: float) -> Tensor:
        out = compiled_flat_rk4_step(
            psi,
            t,
            dt,
            **lattice,
            **spacing,
            potential=sim.equation.potential,
            source=sim.equation.source,
            frequency=sim.equation.coefficients.frequency,
            **sim.equation.raw,
        )
        assert out is not None, RK4_COMPILE_STATUS.reason
        return out

    steps["compiled rhs + torch combos"] = torch_rk4(compiled_rhs, dt)
    steps["fused compiled"] = fused_compiled
    return steps


def run(
    steps: dict[str, Step], psi0: Tensor, dt: float, reps: int, rounds: int
) -> tuple[dict[str, float], dict[str, Tensor]]:
    """Median seconds per step of each contender (interleaved rounds of ``reps`` steps,
    one untimed warm-up step each, which also compiles) and the final fields."""
    state = {name: psi0.clone() for name in steps}
    clock = {name: 0.0 for name in steps}
    for name, f in steps.items():
        start = time.perf_counter()
        state[name] = f(state[name], clock[name])
        clock[name] += dt
        took = time.perf_counter() - start
        if took > 2.0:
            print(f"  (first step of {name!r}: {took:.0f} s, compiling)", flush=True)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, f in steps.items():
            psi, t = state[name], clock[name]
            start = time.perf_counter()
            for _ in range(reps):
                psi = f(psi, t)
                t += dt
            times[name].append((time.perf_counter() - start) / reps)
            state[name], clock[name] = psi, t
    return {k: float(np.median(v)) for k, v in times.items()}, state


def relative(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def bench_flat(rounds: int, compiled: bool) -> None:
    params = FieldParams(
        damping=0.1, diffusion=0.05, dispersion=0.03, nonlinearity=1.0, nonlinear_frequency=0.5
    )
    for n, dt, dtype, reps, with_compiled in CASES:
        lat = MobiusStrip(n, n, topology="torus", dtype=dtype)
        sim = Simulator(lat, params, dt=dt)
        steps = flat_contenders(sim, compiled and with_compiled)
        med, state = run(steps, sim.psi, dt, reps, rounds)
        name = str(dtype).replace("torch.", "")
        print(f"{n}² {name}, flat torus, {reps} steps per round:")
        for key, value in med.items():
            print(f"  {key}: {value * 1e3:.2f} ms")
        old, new = "C++ rhs + torch combos", "fused C++"
        print(
            f"  ratio previous / fused C++ {med[old] / med[new]:.2f}; largest relative "
            f"difference {relative(state[new], state[old]):.1e}"
        )
        if "fused compiled" in med:
            old, new = "compiled rhs + torch combos", "fused compiled"
            print(
                f"  ratio compiled rhs + combos / fused compiled {med[old] / med[new]:.2f}; "
                f"fused C++ / fused compiled {med['fused C++'] / med[new]:.2f}; largest "
                f"relative difference {relative(state[new], state[old]):.1e}"
            )


def bench_stack(batch: int, rounds: int) -> None:
    dtype = torch.complex64
    sim, kw = build_stack(batch, dtype)
    dt = sim.dt

    def stack_step(fn: Callable[..., Tensor | None]) -> Step:
        def step(psi: Tensor, t: float) -> Tensor:
            out = fn(psi, t, dt, **kw)
            assert out is not None
            return out

        return step

    def compiled_rhs(psi: Tensor, t: float) -> Tensor:
        out = _compiled_stack_rhs(psi, t, **kw)
        assert out is not None
        return out

    steps = {
        "eager torch RK4": stack_step(stack_rk4_step_reference),
        "compiled rhs + torch combos": torch_rk4(compiled_rhs, dt),
        "C++ kernel": stack_step(cpp_stack_rk4_step),
        "fused compiled": stack_step(compiled_stack_rk4_step),
    }
    reps = 5
    med, state = run(steps, sim.psi.contiguous(), dt, reps, rounds)
    print(f"stack: {batch} envs × 2 strips × 48 × 12, complex64, every term on:")
    for key, value in med.items():
        print(f"  {key}: {value * 1e3:.2f} ms")
    ref, fused = state["eager torch RK4"], med["fused compiled"]
    diffs = ", ".join(
        f"{name} {relative(state[name], ref):.1e}" for name in steps if name != "eager torch RK4"
    )
    print(
        f"  ratio compiled rhs + combos / fused compiled "
        f"{med['compiled rhs + torch combos'] / fused:.2f}; eager / fused compiled "
        f"{med['eager torch RK4'] / fused:.2f}; C++ / fused compiled "
        f"{med['C++ kernel'] / fused:.2f}"
    )
    print(f"  largest relative difference to eager after {1 + rounds * reps} steps: {diffs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stack-batch", type=int, default=128)
    parser.add_argument("--no-compiled", action="store_true", help="C++ contenders only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-flat", action="store_true", help="the stack case only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, medians of "
        f"{args.rounds} rounds"
    )
    if not args.no_flat:
        bench_flat(args.rounds, not args.no_compiled)
    if not args.no_compiled:
        bench_stack(args.stack_batch, args.rounds)


if __name__ == "__main__":
    main()
