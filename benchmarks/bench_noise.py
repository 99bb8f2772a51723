"""The thermal-noise increment ``ψ + amplitude·√dt·ξ``: torch's ``normal_`` vs the C++ kernel.

The problem is the RL environment's: 128 envs × two 48 × 12 strips (147 456 nodes), a
per-env amplitude ``[B, 1, 1, 1]`` (float32, as the env passes it) or a float, added in
place. Contenders, interleaved in one process (round robin, so both see the same machine
load), each with its own generator:

- ``torch normal_`` — :meth:`~hhml.core.resonance.stochastic.NoiseIncrement.apply_torch`,
  the path the simulator took on the CPU before the kernel (and still takes on CUDA);
- ``C++ kernel`` — :meth:`~hhml.core.resonance.stochastic.NoiseIncrement.apply` on the CPU:
  :func:`~hhml.core.resonance.noise_kernel.cpp_noise_increment` (one key draw, Philox4x32-10,
  Box–Muller), at the build's best vector level;
- ``kernel, level L`` (``--levels``) — :func:`~hhml.core.resonance.noise_kernel.cpp_noise_add`
  forced to one code path (0 scalar, 1 AVX2, 2 AVX-512), key drawing excluded.

Before timing, the kernel's output is checked for its first two moments (a few standard
errors). Prints the median and best ms per call and the ratio torch / kernel.

Usage::

    python benchmarks/bench_noise.py [--dtype complex64 complex128] [--repeats 300]
        [--threads 1] [--levels]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch

from hhml.core.resonance.noise_kernel import (
    NOISE_STATUS,
    cpp_noise_add,
    draw_key,
    noise_simd_level,
)
from hhml.core.resonance.stochastic import NoiseIncrement

SHAPE = (128, 2, 48, 12)  # the env benchmark: 128 envs x two 48 x 12 strips
DT = 0.1


def check_moments(dtype: torch.dtype) -> None:
    """Abort unless the kernel's ξ has mean 0 and ``E|ξ|² = 1`` within 5 standard errors."""
    psi = torch.zeros(SHAPE, dtype=dtype)
    xi = NoiseIncrement().apply(psi, 1.0, 1.0, torch.Generator().manual_seed(0), False)
    n = xi.numel()
    mean, power = complex(xi.mean()), float((xi.abs() ** 2).mean())
    if abs(mean) > 5 * math.sqrt(1 / n) or abs(power - 1) > 5 / math.sqrt(n):
        raise SystemExit(f"kernel noise off: mean {mean}, E|xi|^2 {power} ({n} draws)")


def time_round_robin(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, called in turn ``repeats`` times after a warm-up."""
    for fn in fns.values():
        for _ in range(5):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def bench(dtype: torch.dtype, repeats: int, levels: bool) -> None:
    """Time the contenders on ``SHAPE`` of ``dtype`` and print the table."""
    check_moments(dtype)
    psi = torch.zeros(SHAPE, dtype=dtype)
    amp = torch.full((SHAPE[0], 1, 1, 1), 0.3, dtype=torch.float32)
    torch_step, kernel_step = NoiseIncrement(), NoiseIncrement()
    g_torch, g_kernel = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    fns: dict[str, Callable[[], object]] = {
        "torch normal_, float amplitude": lambda: torch_step.apply_torch(
            psi, 0.3, DT, g_torch, True
        ),
        "C++ kernel, float amplitude": lambda: kernel_step.apply(psi, 0.3, DT, g_kernel, True),
        "torch normal_, per-env amplitude": lambda: torch_step.apply_torch(
            psi, amp, DT, g_torch, True
        ),
        "C++ kernel, per-env amplitude": lambda: kernel_step.apply(psi, amp, DT, g_kernel, True),
    }
    if levels:
        key = draw_key(g_kernel)
        for level in range((noise_simd_level() or 0) + 1):
            fns[f"kernel, level {level}"] = lambda lv=level: cpp_noise_add(
                psi, None, 0.03, key, True, level=lv
            )
    times = time_round_robin(fns, repeats)
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(f"\n{dtype}, {psi.numel()} nodes, {torch.get_num_threads()} thread(s), {repeats} calls")
    print(f"{'contender':36s} {'median ms':>10s} {'best ms':>9s}")
    for name, t in times.items():
        print(f"{name:36s} {med[name]:10.3f} {min(t) * 1e3:9.3f}")
    for kind in ("float amplitude", "per-env amplitude"):
        ratio = med[f"torch normal_, {kind}"] / med[f"C++ kernel, {kind}"]
        print(f"ratio torch / kernel, {kind}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", nargs="+", default=["complex64", "complex128"])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--levels", action="store_true", help="also time each code path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    level = noise_simd_level()
    if level is None:
        raise SystemExit(f"noise kernel unavailable: {NOISE_STATUS.reason}")
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"kernel vector level {level} (0 scalar, 1 AVX2, 2 AVX-512)"
    )
    for name in args.dtype:
        bench(getattr(torch, name), args.repeats, args.levels)


if __name__ == "__main__":
    main()
