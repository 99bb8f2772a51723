"""Geometry updates of a ``LatticeEnsemble``: the former NumPy rebuild vs the torch path.

An RL environment changes the geometry (aspect, κ, δ, ℓ, θ) of its ``B`` envs every
step. Until the torch rewrite, ``LatticeEnsemble.set_geometry`` rebuilt the metric on
the host (a batched ``MobiusStrip`` with fourth-order finite differences of the
embedding, ``band_points`` for the strip distances) and copied it to the device; that
code is reproduced here as ``legacy_rebuild`` so that the two can be timed side by side.

Contenders, timed in interleaved rounds on random geometries (every element changes
every call) for ``B`` = 1, 128, 1024 (``--sizes``), two strips of 48 × 12 (the default
environment lattice), complex64 fields:

- ``numpy``: ``legacy_rebuild`` (validation, metric, coefficients, distances, weights,
  seam phases, copies to the device);
- ``host``: ``LatticeEnsemble.set_geometry`` (validation on the host, one copy of the
  five ``[B]`` vectors to the device, then the tensor path);
- ``tensor``: ``LatticeEnsemble.set_geometry_tensors`` (the hot path; no host sync).

``--mask-sizes`` (default 128 and 4096) compares the tensor path that recomputes all
elements with a masked variant (recompute all, then ``torch.where`` keeps the old values
of the elements whose inputs did not change; half of them change here).

``--kernel-sizes`` (default 128 and 1024; CPU only) times the full
``set_geometry_tensors`` update with the C++ geometry kernel
(:mod:`hhml.core.mobius.geometry_kernel`, what the CPU runs) against the torch path
(the kernel switched off in this process), interleaved, on the same random geometries,
with the float32 coefficient cache of a complex64 simulation; it also reports the largest
relative difference of the two paths' float64 coefficients and float32 weights.

Before timing, the legacy and tensor coefficients are compared (the difference is the
finite-difference error of the legacy path, 2e-11 … 8e-11 relative here).

Usage::

    python benchmarks/bench_geometry.py [--sizes 1 128 1024] [--mask-sizes 128 4096]
        [--kernel-sizes 128 1024] [--rounds 7] [--threads T] [--device cpu|cuda]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

import hhml.core.mobius.ensemble as ensemble_module
from hhml.core.mobius import LatticeEnsemble, MobiusStrip
from hhml.core.mobius.geometry import Centreline, band_points

FloatArray = NDArray[np.float64]
STRIPS, NU, NV = 2, 48, 12
LATTICE: dict[str, Any] = dict(strip_spacing=2.0, edge="neumann", metric="embedded")


class LegacyMillerCentrelines(Centreline):
    """``M`` Miller centrelines at once (the former ``MillerEnsembleCentreline``)."""

    def __init__(
        self, major: FloatArray, minor: FloatArray, kappa: FloatArray, delta: FloatArray
    ) -> None:
        self._params = [np.asarray(x, dtype=np.float64) for x in (major, minor, kappa, delta)]

    def point(self, phi: FloatArray) -> FloatArray:
        extra = (1,) * np.ndim(phi)
        r0, r, kappa, delta = (p.reshape(-1, *extra) for p in self._params)
        big_r = r0 + r * np.cos(phi + np.arcsin(delta) * np.sin(phi))
        z = kappa * r * np.sin(phi)
        x, y, z = np.broadcast_arrays(big_r * np.cos(phi), big_r * np.sin(phi), z)
        return np.stack([x, y, z], axis=-1)


def legacy_rebuild(ens: LatticeEnsemble, geo: dict[str, FloatArray]) -> dict[str, Any]:
    """The former host-side ``set_geometry`` (all elements changed): returns the
    coefficients, areas, coupling weights and seam phases it would have stored."""
    chart, B, S, w = ens.strip, ens.size, ens.num_strips, ens.strip.half_width
    r_max = (S - 1) * ens.strip_spacing * w
    checks = (
        (geo["kappa"] >= 0.5) & (geo["kappa"] <= 3.0),
        (geo["delta"] > -1.0) & (geo["delta"] < 1.0),
        geo["coupling_range"] > 0.0,
        geo["aspect"] * w - r_max - w > 0.0,
    )
    if not all(np.all(ok) for ok in checks) or not all(
        np.all(np.isfinite(v)) for v in geo.values()
    ):
        raise ValueError("benchmark geometry out of range")
    minor = np.arange(S, dtype=np.float64) * ens.strip_spacing * w
    centre = LegacyMillerCentrelines(
        np.repeat(geo["aspect"] * w, S),
        np.tile(minor, B),
        np.repeat(geo["kappa"], S),
        np.repeat(geo["delta"], S),
    )
    band = MobiusStrip(
        ens.nu,
        ens.nv,
        length=chart.length,
        half_width=w,
        topology=chart.topology,
        edge=chart.edge,
        metric=ens.metric,
        aspect=float(geo["aspect"].min()),
        dtype=ens.dtype,
        device=ens.device,
        centreline=centre,
    )
    shape = (B, S, ens.nu, ens.nv)
    coef = tuple(c.expand(B * S, ens.nu, ens.nv).reshape(shape) for c in band._coef64)
    area = band._area.expand(B * S, ens.nu, ens.nv).reshape(shape)
    pts = band_points(
        centre, chart.topology, chart._u_np[:, None], chart._v_np[None, :], chart.length, w
    ).reshape(B, S, ens.nu, ens.nv, 3)
    distances = np.linalg.norm(pts[:, 1:] - pts[:, :-1], axis=-1)
    weights = torch.tensor(
        np.exp(-distances / geo["coupling_range"][:, None, None, None]),
        dtype=chart.real_dtype,
        device=ens.device,
    )
    theta = torch.tensor(geo["twist"], dtype=torch.float64, device=ens.device)
    seam = torch.polar(torch.ones_like(theta), theta).to(ens.dtype).reshape(-1, 1, 1, 1)
    return {"coef": coef, "area": area, "weights": weights, "seam": seam}


def masked_update(ens: LatticeEnsemble, new: dict[str, torch.Tensor]) -> None:
    """The alternative to recomputing all elements: recompute all, then keep the old
    values where (aspect, κ, δ) — resp. (aspect, κ, δ, ℓ) — did not change."""
    old = ens._geo
    shape_changed = (
        (new["aspect"] != old["aspect"])
        | (new["kappa"] != old["kappa"])
        | (new["delta"] != old["delta"])
    )
    coupling_changed = shape_changed | (new["coupling_range"] != old["coupling_range"])
    geo = ens._kernel.coefficients(new["aspect"], new["kappa"], new["delta"])
    m = shape_changed.reshape(-1, 1, 1, 1)
    ens._coef64 = tuple(
        torch.where(m, c, o) for c, o in zip(geo.coefficients, ens._coef64, strict=True)
    )
    real = ens.strip.real_dtype
    ens._area = torch.where(m, geo.area.to(real), ens._area)
    for cast in list(ens._coef_cache):
        ens._coef_cache[cast] = tuple(c.to(cast) for c in ens._coef64)
    weights = (geo.distances * (-1.0 / new["coupling_range"]).reshape(-1, 1, 1, 1)).exp_()
    ens._weights = torch.where(
        coupling_changed.reshape(-1, 1, 1, 1), weights.to(real), ens._weights
    )
    ens._seam = (
        torch.polar(torch.ones_like(new["twist"]), new["twist"]).to(ens.dtype).reshape(-1, 1, 1, 1)
    )
    ens._geo = {k: v.clone() for k, v in new.items()}


def random_geometry(rng: np.random.Generator, size: int) -> dict[str, FloatArray]:
    """Geometry inside the default environment control box."""
    return {
        "aspect": rng.uniform(6.0, 16.0, size),
        "kappa": rng.uniform(0.8, 2.0, size),
        "delta": rng.uniform(-0.5, 0.5, size),
        "coupling_range": rng.uniform(0.2, 3.0, size),
        "twist": rng.uniform(-math.pi, math.pi, size),
    }


def _timed(device: torch.device, fn: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """Seconds of ``fn(*args, **kwargs)`` (device work included on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def compare(ens: LatticeEnsemble, rng: np.random.Generator) -> float:
    """Largest relative difference of the coefficients, legacy vs tensor path."""
    geo = random_geometry(rng, ens.size)
    legacy = legacy_rebuild(ens, geo)
    ens.set_geometry(**geo)
    return max(
        float(((new - old) / old).abs().max())
        for new, old in zip(ens._coef64, legacy["coef"], strict=True)
    )


def time_sizes(
    sizes: list[int], rounds: int, device: torch.device, seed: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for B in sizes:
        ens = LatticeEnsemble(B, STRIPS, NU, NV, **LATTICE, device=device)
        ens.laplacian(ens.zeros())  # the float32 coefficient cache exists, as in a simulation
        max_rel = compare(ens, rng)
        times: dict[str, list[float]] = {"numpy": [], "host": [], "tensor": []}
        for _ in range(rounds):
            geo = random_geometry(rng, B)
            tens = {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in geo.items()}
            times["numpy"].append(_timed(device, legacy_rebuild, ens, geo))
            geo = random_geometry(rng, B)
            times["host"].append(_timed(device, ens.set_geometry, **geo))
            times["tensor"].append(_timed(device, ens.set_geometry_tensors, **tens))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "B": B,
                "max_rel_diff_coefficients": max_rel,
                **{f"median_s_{k}": v for k, v in med.items()},
                **{f"best_s_{k}": min(v) for k, v in times.items()},
                "ratio_numpy_over_tensor": med["numpy"] / med["tensor"],
                "ratio_numpy_over_host": med["numpy"] / med["host"],
            }
        )
    return rows


def time_masks(
    sizes: list[int], rounds: int, device: torch.device, seed: int
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed + 1)
    rows = []
    for B in sizes:
        ens = LatticeEnsemble(B, STRIPS, NU, NV, **LATTICE, device=device)
        ens.laplacian(ens.zeros())
        times: dict[str, list[float]] = {"all": [], "masked": []}
        for _ in range(rounds):
            for name in times:
                cur = {k: v.clone() for k, v in ens._geo.items()}
                fresh = random_geometry(rng, B)
                half = rng.random(B) < 0.5  # half of the elements change
                for k in cur:
                    cur[k][torch.from_numpy(half).to(device)] = torch.tensor(
                        fresh[k][half], dtype=torch.float64, device=device
                    )
                if name == "all":
                    times[name].append(_timed(device, ens.set_geometry_tensors, **cur))
                else:
                    times[name].append(_timed(device, masked_update, ens, cur))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "B": B,
                "median_s_all": med["all"],
                "median_s_masked": med["masked"],
                "ratio_masked_over_all": med["masked"] / med["all"],
            }
        )
    return rows


@contextlib.contextmanager
def torch_geometry_path() -> Iterator[None]:
    """Inside: ``set_geometry_tensors`` takes the torch path (the kernel is not called)."""
    kernel = ensemble_module.cpp_band_update
    ensemble_module.cpp_band_update = lambda *args, **kwargs: None
    try:
        yield
    finally:
        ensemble_module.cpp_band_update = kernel


def _max_rel(new: torch.Tensor, old: torch.Tensor) -> float:
    return float(((new - old) / old).abs().max()) if old.numel() else 0.0


def time_kernel(sizes: list[int], rounds: int, seed: int) -> list[dict[str, Any]]:
    """``set_geometry_tensors`` with the C++ kernel vs the torch path (CPU)."""
    rng = np.random.default_rng(seed + 2)
    rows = []
    for B in sizes:
        kernel_ens = LatticeEnsemble(B, STRIPS, NU, NV, **LATTICE)
        with torch_geometry_path():
            torch_ens = LatticeEnsemble(B, STRIPS, NU, NV, **LATTICE)
        for ens in (kernel_ens, torch_ens):
            ens.laplacian(ens.zeros())  # the float32 coefficient cache, as in a simulation
        times: dict[str, list[float]] = {"torch": [], "kernel": []}
        cpu = torch.device("cpu")
        for _ in range(rounds):
            geo = random_geometry(rng, B)
            tens = {k: torch.tensor(v, dtype=torch.float64) for k, v in geo.items()}
            times["kernel"].append(_timed(cpu, kernel_ens.set_geometry_tensors, **tens))
            with torch_geometry_path():
                times["torch"].append(_timed(cpu, torch_ens.set_geometry_tensors, **tens))
        # both now hold the same geometry; float64 coefficients are computed on read
        coef = max(
            _max_rel(a, b) for a, b in zip(kernel_ens._coef64, torch_ens._coef64, strict=True)
        )
        weights = _max_rel(kernel_ens.coupling_weights(), torch_ens.coupling_weights())
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "B": B,
                "median_s_torch": med["torch"],
                "median_s_kernel": med["kernel"],
                "ratio_torch_over_kernel": med["torch"] / med["kernel"],
                "max_rel_diff_coefficients64": coef,
                "max_rel_diff_weights32": weights,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 128, 1024])
    parser.add_argument("--mask-sizes", type=int, nargs="*", default=[128, 4096])
    parser.add_argument("--kernel-sizes", type=int, nargs="*", default=[128, 1024])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "device": str(device)
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "threads": args.threads,
        "lattice": {"strips": STRIPS, "nu": NU, "nv": NV, **LATTICE, "dtype": "complex64"},
        "sizes": time_sizes(args.sizes, args.rounds, device, args.seed),
        "masks": time_masks(args.mask_sizes, args.rounds, device, args.seed),
        "kernel": (
            time_kernel(args.kernel_sizes, args.rounds, args.seed) if device.type == "cpu" else []
        ),
    }
    print(f"{results['device']}, torch {results['torch']}, {args.threads} thread(s)")
    print(
        f"{'B':>6} {'numpy ms':>10} {'host ms':>10} {'tensor ms':>10} "
        f"{'numpy/tensor':>13} {'max rel diff':>13}"
    )
    for r in results["sizes"]:
        print(
            f"{r['B']:>6} {1e3 * r['median_s_numpy']:>10.3f} {1e3 * r['median_s_host']:>10.3f} "
            f"{1e3 * r['median_s_tensor']:>10.3f} {r['ratio_numpy_over_tensor']:>13.1f} "
            f"{r['max_rel_diff_coefficients']:>13.2e}"
        )
    if results["masks"]:
        print(f"{'B':>6} {'all ms':>10} {'masked ms':>10} {'masked/all':>11}")
        for r in results["masks"]:
            print(
                f"{r['B']:>6} {1e3 * r['median_s_all']:>10.3f} "
                f"{1e3 * r['median_s_masked']:>10.3f} {r['ratio_masked_over_all']:>11.2f}"
            )
    if results["kernel"]:
        print(
            f"{'B':>6} {'torch ms':>10} {'kernel ms':>10} {'torch/kernel':>13} "
            f"{'coef64 diff':>12} {'w32 diff':>10}"
        )
        for r in results["kernel"]:
            print(
                f"{r['B']:>6} {1e3 * r['median_s_torch']:>10.3f} "
                f"{1e3 * r['median_s_kernel']:>10.3f} {r['ratio_torch_over_kernel']:>13.2f} "
                f"{r['max_rel_diff_coefficients64']:>12.2e} {r['max_rel_diff_weights32']:>10.2e}"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
