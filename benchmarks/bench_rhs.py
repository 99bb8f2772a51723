"""Throughput of the flat-metric CGL right-hand side: hhml against py-pde (numba).

Measures node-evaluations per second of

    ∂ψ/∂t = (1 − γ)ψ + (D + iα)Δψ − (g + iβ)|ψ|²ψ

on a periodic (torus) grid, all in one process with the same data and thread settings:

* py-pde 0.5x, numba backend, through its compiled evolution rate (``make_pde_rhs``) of a
  ``PDEBase`` subclass that applies the compiled periodic Laplacian and the local terms in one
  numba function — py-pde's fastest path for a custom equation. The expression-based
  ``PDE`` class is timed as well (it is slower) unless ``--quick``;
* hhml :func:`~hhml.core.resonance.flat_kernels.flat_cgl_rhs`, compiled and eager.

Before timing, every contender's output is compared with py-pde's on the same field; a
relative difference above 1e-10 aborts the run. Times are per call, best and median of
``--repeats`` batches; contenders are timed in turn within each repeat so that load from
other processes affects all of them alike. Cases: 512² complex128 (the acceptance case),
512² Möbius and complex64 (hhml only), 2048² (memory-bound, against a plain ``copy_`` of the
same bytes) and a batch of 16 fields of 256².

Usage::

    python benchmarks/bench_rhs.py [--quick] [--repeats N] [--threads T] [--json PATH]

To time whole integrator steps next to the rhs, add a function to :data:`EXTRA_CASES` that
builds its contenders and returns ``measure_all(...)`` of them (see
:func:`simulator_step_case`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

# Large fields (2048² complex128 = 64 MiB) are allocated per call by every contender. numpy
# backs such arrays with transparent huge pages (madvise) by default; torch does so only with
# this switch, which must be set before torch allocates. Without it the 2048² case measures
# page faults. Set THP_MEM_ALLOC_ENABLE=0 in the environment to time torch's default.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import torch

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance import FieldParams, Simulator, flat_kernels
from hhml.core.resonance.cpp_kernels import CPP_STATUS
from hhml.core.resonance.flat_kernels import flat_cgl_rhs

#: CGL coefficients: γ, D, α, g, β. With γ < 1 the uniform state |ψ|² = (1 − γ)/g is the
#: attractor, Benjamin–Feir stable since 1 + αβ/D·g > 0 (here 1 + 0.3·0.5/0.5 = 1.3).
GAMMA, DIFFUSION, ALPHA, G, BETA = 0.1, 0.05, 0.03, 1.0, 0.5  # inside the FieldParams ranges
#: Domain: u ∈ [0, L), v ∈ (−w, w) with L = 2w = 64 (healing length √(D/(1 − γ)) ≈ 0.75).
LENGTH, HALF_WIDTH = 64.0, 32.0
#: Largest accepted relative difference between an hhml rhs and py-pde's.
MATCH_TOLERANCE = 1e-10


@dataclass
class Timing:
    """Per-call wall-clock times of one contender in one case."""

    case: str
    label: str
    nodes_per_call: int
    best_s: float
    median_s: float
    calls_per_batch: int
    note: str = ""

    @property
    def best_rate(self) -> float:
        """Node evaluations per second at the best batch."""
        return self.nodes_per_call / self.best_s

    @property
    def median_rate(self) -> float:
        """Node evaluations per second at the median batch."""
        return self.nodes_per_call / self.median_s


@dataclass
class Case:
    """A benchmark case: its contenders' timings and derived figures."""

    name: str
    timings: list[Timing]
    ratios: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float | str] = field(default_factory=dict)


def _calls_per_batch(fn: Callable[[], object], min_batch_s: float) -> int:
    fn()
    start = time.perf_counter()
    fn()
    one = time.perf_counter() - start
    return max(1, math.ceil(min_batch_s / max(one, 1e-7)))


def measure_all(
    case: str,
    contenders: dict[str, Callable[[], object]],
    nodes_per_call: int,
    *,
    repeats: int,
    min_batch_s: float,
    notes: dict[str, str] | None = None,
) -> list[Timing]:
    """Time callables in turn: ``repeats`` rounds, one batch of calls per contender each.

    Parameters
    ----------
    case
        Case name for the report.
    contenders
        Label → zero-argument callable doing one evaluation (already warmed up or not:
        two untimed calls run first).
    nodes_per_call
        Lattice nodes one call evaluates (batch × nu × nv).
    repeats
        Number of rounds; best and median are over rounds.
    min_batch_s
        Each batch runs enough calls to last at least this long.
    """
    sizes = {label: _calls_per_batch(fn, min_batch_s) for label, fn in contenders.items()}
    samples: dict[str, list[float]] = {label: [] for label in contenders}
    for _ in range(repeats):
        for label, fn in contenders.items():
            n = sizes[label]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[label].append((time.perf_counter() - start) / n)
    return [
        Timing(
            case,
            label,
            nodes_per_call,
            min(samples[label]),
            statistics.median(samples[label]),
            sizes[label],
            (notes or {}).get(label, ""),
        )
        for label in contenders
    ]


# ---------------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------------


def _random_field(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / math.sqrt(2)


def _hhml_rhs(psi: torch.Tensor, compiled: bool) -> Callable[[], torch.Tensor]:
    nu, nv = psi.shape[-2:]
    kwargs = {
        "topology": "torus",
        "edge": "neumann",
        "twist": 0.0,
        "du": LENGTH / nu,
        "dv": 2 * HALF_WIDTH / nv,
        "damping": GAMMA,
        "diffusion": DIFFUSION,
        "dispersion": ALPHA,
        "nonlinearity": G,
        "nonlinear_frequency": BETA,
        "compiled": compiled,
    }
    return lambda: flat_cgl_rhs(psi, **kwargs)  # type: ignore[arg-type]


def _pypde_rhs(data: np.ndarray, expression: bool) -> Callable[[], np.ndarray]:
    """py-pde's compiled (numba) evolution rate of the CGL equation on ``data``'s grid."""
    from pde import PDE, CartesianGrid, PDEBase, ScalarField

    nu, nv = data.shape
    grid = CartesianGrid([[0.0, LENGTH], [-HALF_WIDTH, HALF_WIDTH]], [nu, nv], periodic=True)
    state = ScalarField(grid, data, dtype=complex)

    class ComplexGinzburgLandau(PDEBase):  # type: ignore[misc]
        """CGL with the local terms and the periodic Laplacian in one numba function."""

        def evolution_rate(self, state: ScalarField, t: float = 0) -> ScalarField:
            lap = state.laplace(bc="periodic").data
            s = state.data
            density = s.real**2 + s.imag**2
            rate = (
                (1 - GAMMA) * s + complex(DIFFUSION, ALPHA) * lap - complex(G, BETA) * density * s
            )
            return ScalarField(state.grid, rate)

        def make_evolution_rate(self, state: ScalarField, backend: object) -> Callable[..., object]:
            laplace = state.grid.make_operator(
                "laplace", bc="periodic", backend=backend, dtype=state.dtype
            )
            linear, diffusive, cubic = 1 - GAMMA, complex(DIFFUSION, ALPHA), complex(G, BETA)

            def rhs(s: np.ndarray, t: float = 0) -> np.ndarray:
                return linear * s + diffusive * laplace(s) - cubic * (s.real**2 + s.imag**2) * s

            return rhs

    if expression:
        eq = PDE(
            {
                "u": f"{1 - GAMMA}*u + ({DIFFUSION} + {ALPHA}*I)*laplace(u)"
                f" - ({G} + {BETA}*I)*u*abs(u)**2"
            },
            bc="periodic",
        )
    else:
        eq = ComplexGinzburgLandau()
    rhs = eq.make_pde_rhs(state, backend="numba")
    values = state.data
    return lambda: rhs(values, 0.0)


def _check_match(case: str, label: str, value: torch.Tensor, reference: np.ndarray) -> float:
    err = float(np.abs(value.numpy() - reference).max() / np.abs(reference).max())
    if not err <= MATCH_TOLERANCE:
        raise SystemExit(
            f"MISMATCH in {case}: {label} differs from py-pde by {err:.3e} (relative), "
            f"more than {MATCH_TOLERANCE:.0e}; the timings would not compare the same equation"
        )
    return err


def _first_call_seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _simulator(n: int, batch: int) -> Simulator:
    """The Simulator on a periodic n × n complex128 torus with the benchmark's CGL."""
    lattice = MobiusStrip(
        n,
        n,
        length=LENGTH,
        half_width=HALF_WIDTH,
        topology="torus",
        edge="neumann",
        dtype=torch.complex128,
    )
    params = FieldParams(
        damping=GAMMA,
        diffusion=DIFFUSION,
        dispersion=ALPHA,
        nonlinearity=G,
        nonlinear_frequency=BETA,
    )
    return Simulator(lattice, params, dt=1e-9, batch=batch if batch > 1 else None)


def _simulator_rhs(psi: torch.Tensor, n: int, batch: int) -> Callable[[], torch.Tensor]:
    sim = _simulator(n, batch)
    return lambda: sim.rhs(psi, 0.0)


def pypde_case(
    name: str, n: int, args: argparse.Namespace, *, batch: int = 1, copy_reference: bool = False
) -> Case:
    """hhml compiled/eager against py-pde on ``batch`` periodic ``n × n`` complex128 fields."""
    shape = (batch, n, n) if batch > 1 else (n, n)
    data = _random_field(shape, seed=n + batch)
    psi = torch.from_numpy(data)
    nodes = batch * n * n

    fields = [data[b] for b in range(batch)] if batch > 1 else [data]
    pypde_single = [_pypde_rhs(f, expression=False) for f in fields]
    pypde = {
        "py-pde numba (PDEBase)": lambda: [f() for f in pypde_single],
    }
    if not args.quick:
        pypde_expr = [_pypde_rhs(f, expression=True) for f in fields]
        pypde["py-pde numba (PDE expression)"] = lambda: [f() for f in pypde_expr]

    compiled = _hhml_rhs(psi, compiled=True)
    eager = _hhml_rhs(psi, compiled=False)
    sim_rhs = _simulator_rhs(psi, n, batch)
    extra_sim_s = _first_call_seconds(sim_rhs)
    compile_s = _first_call_seconds(compiled)
    reference = np.stack([f() for f in pypde_single]).reshape(shape)
    extra: dict[str, float | str] = {
        "hhml_first_call_s": compile_s,
        "simulator_first_call_s": extra_sim_s,
        "cpp_kernel": "ok" if CPP_STATUS.ok else f"unavailable: {CPP_STATUS.reason}",
    }
    for label, fn in (
        ("hhml compiled", compiled),
        ("hhml eager", eager),
        ("hhml Simulator.rhs (C++)", sim_rhs),
    ):
        extra[f"max_rel_diff[{label}]"] = _check_match(name, label, fn(), reference)
    for label, fn in pypde.items():
        value = np.stack(fn()).reshape(shape)  # type: ignore[call-overload]
        extra[f"max_rel_diff[{label} vs PDEBase]"] = _check_match(
            name, label, torch.from_numpy(value), reference
        )

    contenders: dict[str, Callable[[], object]] = dict(pypde)
    contenders["hhml Simulator.rhs (C++)"] = sim_rhs
    contenders["hhml compiled"] = compiled
    if not (args.quick and n > 1024):
        contenders["hhml eager"] = eager
    notes = {"hhml compiled": flat_kernels.COMPILE_STATUS.state}
    if copy_reference:
        src = torch.from_numpy(data.copy())
        dst = torch.empty_like(src)
        contenders["copy_ (same bytes)"] = lambda: dst.copy_(src)
    timings = measure_all(
        name, contenders, nodes, repeats=args.repeats, min_batch_s=args.min_batch, notes=notes
    )
    case = Case(name, timings, extra=extra)
    by_label = {t.label: t for t in timings}
    base = min((t for t in timings if t.label.startswith("py-pde")), key=lambda t: t.best_s)
    for label in ("hhml Simulator.rhs (C++)", "hhml compiled", "hhml eager"):
        if label in by_label:
            case.ratios[f"{label} / {base.label} (best)"] = base.best_s / by_label[label].best_s
            case.ratios[f"{label} / {base.label} (median)"] = (
                base.median_s / by_label[label].median_s
            )
    if copy_reference:
        copy_t, rhs_t = by_label["copy_ (same bytes)"], by_label["hhml compiled"]
        # The rhs must read ψ and write ∂ψ/∂t at least once: the bytes of one copy.
        case.ratios["hhml compiled: fraction of copy bandwidth"] = copy_t.best_s / rhs_t.best_s
        case.extra["copy_GBps"] = 2 * data.nbytes / copy_t.best_s / 1e9
    return case


def hhml_only_case(
    name: str, n: int, args: argparse.Namespace, *, dtype: torch.dtype, topology: str
) -> Case:
    """hhml compiled/eager alone (no py-pde counterpart: Möbius seam, complex64)."""
    psi = torch.from_numpy(_random_field((n, n), seed=7)).to(dtype)
    kwargs = {
        "topology": topology,
        "edge": "dirichlet",
        "twist": 0.5 if topology != "torus" else 0.0,
        "du": LENGTH / n,
        "dv": 2 * HALF_WIDTH / n,
        "damping": GAMMA,
        "diffusion": DIFFUSION,
        "dispersion": ALPHA,
        "nonlinearity": G,
        "nonlinear_frequency": BETA,
    }

    def compiled() -> torch.Tensor:
        return flat_cgl_rhs(psi, compiled=True, **kwargs)  # type: ignore[arg-type]

    def eager() -> torch.Tensor:
        return flat_cgl_rhs(psi, compiled=False, **kwargs)  # type: ignore[arg-type]

    compile_s = _first_call_seconds(compiled)
    tol = 1e-12 if dtype == torch.complex128 else 1e-5
    a, b = compiled(), eager()
    diff = float((a - b).abs().max() / b.abs().max())
    if not diff <= tol:
        raise SystemExit(f"MISMATCH in {name}: compiled vs eager differ by {diff:.3e}")
    timings = measure_all(
        name,
        {"hhml compiled": compiled, "hhml eager": eager},
        n * n,
        repeats=args.repeats,
        min_batch_s=args.min_batch,
    )
    case = Case(name, timings, extra={"hhml_first_call_s": compile_s, "compiled_vs_eager": diff})
    case.ratios["hhml compiled / hhml eager (best)"] = timings[1].best_s / timings[0].best_s
    return case


def simulator_step_case(args: argparse.Namespace) -> list[Case]:
    """A full RK4 step of the Simulator (512², 256² with --quick) against one rhs call.

    The step is timed as ``step(20)`` (one finiteness check per call, as in a run with the
    default ``check_every = 20``); ``rk4_step_ms`` and the ratio are per step.
    """
    n = 256 if args.quick else 512
    sim = _simulator(n, 1)
    sim.dt = 0.5 * sim.max_stable_dt()
    rhs = _simulator_rhs(sim.psi, n, 1)
    _first_call_seconds(rhs)
    steps = 20  # one finiteness check per call, as in a real run with check_every = 20
    _first_call_seconds(lambda: sim.step(steps))
    name = f"RK4 step torus {n}² c128"
    timings = measure_all(
        name,
        {f"hhml Simulator.step({steps}) (RK4)": lambda: sim.step(steps), "hhml Simulator.rhs": rhs},
        n * n,
        repeats=args.repeats,
        min_batch_s=args.min_batch,
    )
    case = Case(name, timings)
    per_step = timings[0].best_s / steps
    case.extra["rk4_step_ms"] = per_step * 1e3
    case.ratios["RK4 step / one rhs evaluation (best)"] = per_step / timings[1].best_s
    return [case]


#: Extra case builders run after the rhs cases; each returns a list of :class:`Case`.
EXTRA_CASES: list[Callable[[argparse.Namespace], list[Case]]] = [simulator_step_case]


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _numpy_hugepage() -> str:
    try:
        from numpy._core.multiarray import _get_madvise_hugepage
    except ImportError:
        return "unknown"
    return str(bool(_get_madvise_hugepage()))


def environment() -> dict[str, object]:
    import numba
    import pde

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "py-pde": pde.__version__,
        "py-pde_multithreading": str(pde.config["backend"]["numba"]["multithreading"]),
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE", ""),
        "numpy_madvise_hugepage": _numpy_hugepage(),
        "python": sys.version.split()[0],
    }


def print_report(cases: list[Case], env: dict[str, object]) -> None:
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    header = f"{'case':<24} {'contender':<30} {'best ms':>9} {'median ms':>10} {'Mnode/s':>9}"
    for case in cases:
        print()
        print(header)
        print("-" * len(header))
        for t in case.timings:
            print(
                f"{t.case:<24} {t.label:<30} {t.best_s * 1e3:>9.3f} {t.median_s * 1e3:>10.3f} "
                f"{t.best_rate / 1e6:>9.1f}"
            )
        for name, value in case.ratios.items():
            print(f"  ratio  {name}: {value:.2f}")
        for name, value in case.extra.items():
            shown = f"{value:.3g}" if isinstance(value, float) else value
            print(f"  info   {name}: {shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip slow extras")
    parser.add_argument("--repeats", type=int, default=None, help="timing rounds (default 15)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and numba threads (default: as is)"
    )
    parser.add_argument(
        "--min-batch", type=float, default=0.05, help="seconds per timed batch (default 0.05)"
    )
    parser.add_argument("--json", type=str, default=None, help="write results to this file")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 5 if args.quick else 15
    if args.quick:
        args.min_batch = min(args.min_batch, 0.02)
    if args.threads is not None:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)

    env = environment()
    cases = [
        pypde_case("torus 512² c128", 512, args),
        hhml_only_case("mobius 512² c128", 512, args, dtype=torch.complex128, topology="mobius"),
        hhml_only_case("torus 512² c64", 512, args, dtype=torch.complex64, topology="torus"),
        pypde_case("torus 2048² c128", 2048, args, copy_reference=True),
        pypde_case("torus 16×256² c128", 256, args, batch=16),
    ]
    for extra in EXTRA_CASES:
        cases.extend(extra(args))
    env["hhml_compile_status"] = flat_kernels.COMPILE_STATUS.state
    env["hhml_kernels_compiled"] = flat_kernels.COMPILE_STATUS.kernels
    env["hhml_compile_seconds_total"] = round(flat_kernels.COMPILE_STATUS.compile_seconds, 1)
    print_report(cases, env)
    if args.json:
        payload = {
            "environment": env,
            "cases": [
                {
                    "name": c.name,
                    "timings": [
                        {**asdict(t), "best_rate": t.best_rate, "median_rate": t.median_rate}
                        for t in c.timings
                    ],
                    "ratios": c.ratios,
                    "extra": c.extra,
                }
                for c in cases
            ],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
