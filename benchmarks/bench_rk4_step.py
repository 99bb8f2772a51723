"""One RK4 step of a flat strip: the fused C++ step vs the previous path (the C++
right-hand side with the stage combinations in torch), interleaved in one process,
medians of 5 rounds, 2 threads; prints the ratio and the largest relative difference
of the two fields after the timed steps.

Usage::

    python benchmarks/bench_rk4_step.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from hhml.config.schema import FieldParams
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import Simulator

CASES = (
    (256, 4e-4, torch.complex128, 40),
    (512, 1e-4, torch.complex128, 20),
    (2048, 5e-6, torch.complex64, 4),
)


def main() -> None:
    torch.set_num_threads(2)
    params = FieldParams(
        damping=0.1, diffusion=0.05, dispersion=0.03, nonlinearity=1.0, nonlinear_frequency=0.5
    )
    for n, dt, dtype, reps in CASES:
        lat = MobiusStrip(n, n, topology="torus", dtype=dtype)
        fused = Simulator(lat, params, dt=dt)
        old = Simulator(lat, params, dt=dt)
        old.fused_rk4_step = lambda *args: None  # type: ignore[method-assign]
        old.psi = fused.psi.clone()
        times: dict[str, list[float]] = {"old": [], "fused": []}
        for _ in range(5):
            for name, sim in (("old", old), ("fused", fused)):
                sim.step(1)
                t0 = time.perf_counter()
                sim.step(reps)
                times[name].append((time.perf_counter() - t0) / reps)
        diff = float((fused.psi - old.psi).abs().max() / old.psi.abs().max())
        t_old, t_new = np.median(times["old"]), np.median(times["fused"])
        print(
            f"{n}² {dtype}: previous {t_old * 1e3:.2f} ms, fused {t_new * 1e3:.2f} ms, "
            f"ratio {t_old / t_new:.2f}, largest relative difference {diff:.1e}"
        )


if __name__ == "__main__":
    main()
