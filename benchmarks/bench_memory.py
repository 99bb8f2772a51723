"""Peak extra memory of a 2048×2048 complex64 RK4 simulation, in units of the field size.

Reads the process's resident-set high-water mark (Linux ``/proc/self/status``) before
the simulator exists and after a few RK4 steps (C++ kernel path and eager path).

    python benchmarks/bench_memory.py [--n 2048] [--steps 5]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import FieldParams, Simulator


def _kib(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"/proc/self/status has no {key}; this script needs Linux")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--compiled", choices=["auto", "eager"], default="auto")
    args = parser.parse_args()
    lattice = MobiusStrip(args.n, args.n, length=64.0, half_width=32.0, dtype=torch.complex64)
    field_mib = args.n * args.n * 8 / 2**20
    baseline = _kib("VmRSS")
    sim = Simulator(
        lattice, FieldParams(), dt=1e-9, compiled=None if args.compiled == "auto" else False
    )
    sim.dt = 0.5 * sim.max_stable_dt()
    sim.step(args.steps)
    peak = _kib("VmHWM")
    extra = (peak - baseline) / 1024
    print(
        f"{args.n}² complex64, {args.steps} RK4 steps ({args.compiled}): "
        f"field {field_mib:.0f} MiB, peak extra {extra:.0f} MiB = "
        f"{extra / field_mib:.1f} × field (state included)"
    )


if __name__ == "__main__":
    main()
