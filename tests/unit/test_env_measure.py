"""measure_vortices against detect_vortices, observables.hexatic_order and VortexAges.

The reference is the per-environment loop the environment used before (detect, then
hexatic order and Hungarian ages strip by strip on the host), capped at K vortices per
strip like the batched code. Both backends (padded torch, C++ kernel) are compared with
it and with each other. The kernel's own paths are checked against the torch code too:
ties in its neighbour search, edge angles of exactly ±π in its winding numbers, its
moment sums, and results that do not depend on the thread count.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import fields
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from vortex_ages_reference import VortexAges

from hhml.core.mobius import LatticeEnsemble
from hhml.core.resonance import imprint_pair, imprint_vortex
from hhml.core.resonance.tracking import band_displacement
from hhml.core.resonance.vortices import detect_vortices
from hhml.errors import ConfigError
from hhml.ml.env import measure_kernel
from hhml.ml.env.measure import (
    MATCH_ROUNDS,
    VortexMeasurement,
    VortexTracks,
    _hexatic_torch,
    measure_vortices,
)
from hhml.ml.env.observables import hexatic_order
from hhml.utils.cpp_build import CppKernel

BACKENDS = ["torch", "cpp"]
FEATURES = (
    "count",
    "vortex_density",
    "mean_abs_charge",
    "multi_charge_fraction",
    "net_charge_density",
    "core_depth",
    "hexatic_order",
    "mean_age",
)


def _lattice(
    B: int, S: int, nu: int, nv: int, topology: str, dtype: torch.dtype, twist: Any = None
) -> LatticeEnsemble:
    if twist is None:
        twist = np.linspace(-2.0, 2.5, B)
    return LatticeEnsemble(
        B, S, nu, nv, twist=twist, topology=topology, metric="flat", dtype=dtype, strip_spacing=2.0
    )


def _random(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _require_kernel(backend: str) -> None:
    if backend == "cpp" and measure_kernel.load() is None:
        pytest.fail(f"C++ kernel unavailable: {measure_kernel.KERNEL_STATUS.reason}")


def mutual_nearest_ages(
    old: tuple[np.ndarray, np.ndarray, np.ndarray],
    pos: np.ndarray,
    q: np.ndarray,
    dt: float,
    chart: Any,
    track_distance: float,
) -> np.ndarray:
    """The batched linking rule, written out with loops: allowed links (band distance,
    transported charge), then rounds of mutual nearest allowed partners (lower index first)."""
    old_pos, old_q, old_age = old
    ages = np.zeros(len(pos))
    if not len(pos) or not len(old_pos):
        return ages
    d = band_displacement(
        old_pos[:, None, :],
        pos[None, :, :],
        length=chart.length,
        half_width=chart.half_width,
        topology=chart.topology,
    )
    moved = np.where(d.crosses_seam & (chart.topology == "mobius"), -old_q[:, None], old_q[:, None])
    dist = np.where((d.distance <= track_distance) & (moved == q[None, :]), d.distance, np.inf)
    for _ in range(MATCH_ROUNDS):
        best_new = [int(np.argmin(row)) if np.isfinite(row).any() else -1 for row in dist]
        pairs = [
            (o, n) for o, n in enumerate(best_new) if n >= 0 and int(np.argmin(dist[:, n])) == o
        ]
        for o, n in pairs:
            ages[n] = old_age[o] + dt
            dist[o, :] = np.inf
            dist[:, n] = np.inf
    return ages


class Reference:
    """The old per-env loop (detect → per strip hexatic_order and VortexAges.update), plus
    the mutual-nearest rule (:func:`mutual_nearest_ages`) on the same detections."""

    def __init__(self, lattice: LatticeEnsemble, K: int, track_distance: float, min_pts: int):
        chart = lattice.strip
        self.lattice, self.K, self.min_pts = lattice, K, min_pts
        self.B, self.S = lattice.size, lattice.num_strips
        self.track_distance = track_distance
        self.ages = VortexAges(
            self.B * self.S, chart.length, chart.half_width, chart.topology, track_distance
        )
        empty = (np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0))
        self.previous = {(b, s): empty for b in range(self.B) for s in range(self.S)}

    def __call__(self, psi: torch.Tensor, dt: np.ndarray) -> dict[str, Any]:
        chart, B, S, K = self.lattice.strip, self.B, self.S, self.K
        vort = detect_vortices(psi, self.lattice)
        idx = vort.index.numpy()
        charge = vort.charge.numpy()
        depth = vort.depth.numpy()
        pos = vort.position.numpy().astype(np.float64)
        P1, P2 = chart.plaquette_shape
        plaquettes = S * P1 * P2
        out: dict[str, Any] = {k: np.zeros(B) for k in FEATURES}
        out["strip_ages"] = {}
        out["strip_mutual_ages"] = {}
        out["mutual_mean_age"] = np.zeros(B)
        out["strip_hexatic"] = np.zeros((B, S))
        for b in range(B):
            mine = idx[:, 0] == b
            q = charge[mine]
            n = int(mine.sum())
            out["count"][b] = n
            out["vortex_density"][b] = n / plaquettes
            if n:
                out["mean_abs_charge"][b] = float(np.abs(q).mean())
                out["multi_charge_fraction"][b] = float((np.abs(q) >= 2).mean())
                out["net_charge_density"][b] = float(q.sum()) / plaquettes
                out["core_depth"][b] = float(depth[mine].astype(np.float64).mean())
            ages: list[float] = []
            mutual: list[float] = []
            for s in range(S):
                sel = np.flatnonzero(mine & (idx[:, 1] == s))[:K]
                a = self.ages.update(b * S + s, pos[sel], charge[sel], float(dt[b]))
                out["strip_ages"][b, s] = a
                ages.extend(a.tolist())
                a = mutual_nearest_ages(
                    self.previous[b, s],
                    pos[sel],
                    charge[sel],
                    float(dt[b]),
                    chart,
                    self.track_distance,
                )
                self.previous[b, s] = (pos[sel], charge[sel], a)
                out["strip_mutual_ages"][b, s] = a
                mutual.extend(a.tolist())
                h = hexatic_order(
                    pos[sel], chart.length, chart.half_width, chart.topology, self.min_pts
                )
                out["strip_hexatic"][b, s] = h
            out["hexatic_order"][b] = float(np.mean(out["strip_hexatic"][b]))
            out["mean_age"][b] = float(np.mean(ages)) if ages else 0.0
            out["mutual_mean_age"][b] = float(np.mean(mutual)) if mutual else 0.0
        out["vortices"] = vort
        return out


def _measure(
    psi: torch.Tensor,
    lattice: LatticeEnsemble,
    tracks: VortexTracks,
    dt: np.ndarray,
    K: int,
    backend: str,
    track_distance: float = 0.5,
    min_pts: int = 7,
) -> tuple[VortexMeasurement, VortexTracks]:
    return measure_vortices(
        psi,
        lattice,
        tracks,
        torch.as_tensor(dt, dtype=torch.float64),
        max_vortices=K,
        track_distance=track_distance,
        min_vortices_for_order=min_pts,
        backend=backend,  # type: ignore[arg-type]
    )


def _check_vortices(
    m: VortexMeasurement, ref: dict[str, Any], K: int, pos_tol: float, depth_tol: float
) -> None:
    """Padded vortices == the first K detections of every strip."""
    vort = ref["vortices"]
    idx = vort.index
    B, S = m.valid.shape[:2]
    for b in range(B):
        for s in range(S):
            sel = torch.nonzero((idx[:, 0] == b) & (idx[:, 1] == s))[:, 0]
            n, k = len(sel), min(len(sel), K)
            assert bool(m.overflow[b, s]) == (n > K)
            assert torch.equal(m.valid[b, s], torch.arange(K) < k)
            first = sel[:k]
            assert torch.equal(m.i[b, s, :k], idx[first, 2])
            assert torch.equal(m.j[b, s, :k], idx[first, 3])
            assert torch.equal(m.charge[b, s, :k], vort.charge[first])
            pos = vort.position[first].to(torch.float64)
            np.testing.assert_allclose(m.position[b, s, :k], pos, rtol=0, atol=pos_tol)
            dep = vort.depth[first].to(torch.float64)
            np.testing.assert_allclose(m.depth[b, s, :k], dep, rtol=0, atol=depth_tol)
            # empty slots are zero
            assert not m.charge[b, s, k:].any() and not m.position[b, s, k:].any()


def _check_features(
    m: VortexMeasurement, tracks: VortexTracks, ref: dict[str, Any], rel: float
) -> None:
    """Features equal the old loop's; ages equal the mutual-nearest reference."""
    for name in FEATURES:
        got = getattr(m, name).numpy()
        assert got.dtype == np.float64, name
        want = ref["mutual_mean_age" if name == "mean_age" else name]
        np.testing.assert_allclose(got, want, rtol=rel, atol=rel, err_msg=name)
    for (b, s), ages in ref["strip_mutual_ages"].items():
        np.testing.assert_array_equal(tracks.age[b, s, : len(ages)].numpy(), ages)


# Tolerances (position, depth, relative for the features), about 10x the measured errors:
# positions equal detect_vortices bit for bit on both paths (measured 0; the bound is one
# ulp of u ~ 6: 8.9e-16 in float64, 4.8e-7 in float32); depths of the torch path are
# bit-identical, the C++ kernel sums the strip rms in another order (measured ≤ 2.2e-16 in
# complex128, ≤ 1.2e-7 = 1 ulp in complex64); features ≤ 6.4e-16 relative in complex128 and
# ≤ 2.0e-7 in complex64 (core depth, via the rms).
TOL = {torch.complex128: (1e-15, 2e-15, 5e-15), torch.complex64: (5e-7, 1.2e-6, 2e-6)}
# hexatic order against observables.hexatic_order: measured ≤ 4.6e-16 (absolute)
HEX_TOL = 5e-15


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_random_fields_match_the_reference(backend: str, dtype: torch.dtype, topology: str) -> None:
    _require_kernel(backend)
    B, S, K = 3, 2, 80
    lat = _lattice(B, S, 20, 8, topology, dtype)
    ref = Reference(lat, K, 0.5, 7)
    tracks = VortexTracks.empty(B, S, K, "cpu")
    pos_tol, depth_tol, rel = TOL[dtype]
    psi = _random((B, S, 20, 8), dtype, seed=1)
    for frame in range(3):
        dt = np.array([0.0, 0.1, 0.25]) if frame else np.zeros(B)
        expected = ref(psi, dt)
        m, tracks = _measure(psi, lat, tracks, dt, K, backend)
        _check_vortices(m, expected, K, pos_tol, depth_tol)
        _check_features(m, tracks, expected, rel)
        np.testing.assert_allclose(
            m.hexatic_order.numpy(), expected["hexatic_order"], rtol=0, atol=HEX_TOL
        )
        psi = psi + 0.05 * _random((B, S, 20, 8), dtype, seed=10 + frame)


def _imprinted(
    lat: LatticeEnsemble, cores: list[list[list[tuple[float, float, int]]]], dtype: torch.dtype
) -> torch.Tensor:
    """A unit field with the given cores (u, v, q) imprinted in every (env, strip)."""
    chart = lat.strip
    B, S = lat.size, lat.num_strips
    psi = torch.ones(B, S, chart.nu, chart.nv, dtype=dtype)
    for b in range(B):
        for s in range(S):
            f = psi[b, s]
            for u, v, q in cores[b][s]:
                f = imprint_vortex(f, chart, (u, v), charge=q, core_radius=0.15)
            psi[b, s] = f
    return psi


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("topology", ["mobius", "cylinder"])
def test_imprinted_vortices_and_pairs(backend: str, topology: str) -> None:
    _require_kernel(backend)
    B, S, K = 2, 2, 32
    lat = _lattice(B, S, 32, 12, topology, torch.complex128, twist=[0.0, 1.3])
    L = lat.strip.length
    du = lat.strip.du
    cores = [
        # env 0: a core at u = 0.2 du, which the last row's plaquette sees through the seam
        # (refined past u = L, mapped back), one at u = L - 0.3 du, a charge-2 imprint
        [[(0.2 * du, 0.31, 1), (L - 0.3 * du, 0.7, 1), (2.0, -0.4, 2)], [(1.0, 0.0, 1)]],
        [[], [(3.0, 0.2, -1), (5.5, -0.6, 1)]],
    ]
    psi = _imprinted(lat, cores, torch.complex128)
    psi[1, 0] = imprint_pair(psi[1, 0], lat.strip, (3.0, 0.1), 1.0)
    ref = Reference(lat, K, 0.5, 2)
    tracks = VortexTracks.empty(B, S, K, "cpu")
    expected = ref(psi, np.zeros(B))
    m, tracks = _measure(psi, lat, tracks, np.zeros(B), K, backend, min_pts=2)
    _check_vortices(m, expected, K, *TOL[torch.complex128][:2])
    _check_features(m, tracks, expected, TOL[torch.complex128][2])
    np.testing.assert_allclose(m.hexatic_order.numpy(), expected["hexatic_order"], atol=HEX_TOL)
    # the seam case is exercised: a last-row plaquette whose core maps to u < du
    mapped = (m.i[0, 0] == lat.strip.nu - 1) & (m.position[0, 0, :, 0] < du) & m.valid[0, 0]
    assert bool(mapped.any())


@pytest.mark.parametrize("backend", BACKENDS)
def test_field_without_vortices(backend: str) -> None:
    _require_kernel(backend)
    B, S, K = 2, 3, 16
    lat = _lattice(B, S, 12, 6, "mobius", torch.complex64, twist=[0.0, 0.7])
    tracks = VortexTracks.empty(B, S, K, "cpu")
    for psi in (torch.ones(B, S, 12, 6, dtype=torch.complex64), lat.zeros()):
        assert len(detect_vortices(psi, lat)) == 0
        m, tracks = _measure(psi, lat, tracks, np.full(B, 0.1), K, backend)
        assert not m.valid.any() and not m.overflow.any()
        for name in FEATURES:
            assert torch.equal(getattr(m, name), torch.zeros(B, dtype=torch.float64)), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_overflowing_strips_use_their_first_k(backend: str) -> None:
    _require_kernel(backend)
    B, S, K = 2, 2, 9
    lat = _lattice(B, S, 16, 8, "mobius", torch.complex128)
    ref = Reference(lat, K, 0.6, 7)
    tracks = VortexTracks.empty(B, S, K, "cpu")
    psi = _random((B, S, 16, 8), torch.complex128, seed=5)
    for frame in range(2):
        dt = np.full(B, 0.2 * frame)
        expected = ref(psi, dt)
        m, tracks = _measure(psi, lat, tracks, dt, K, backend, track_distance=0.6)
        assert bool(m.overflow.all())
        _check_vortices(m, expected, K, *TOL[torch.complex128][:2])
        _check_features(m, tracks, expected, TOL[torch.complex128][2])
        psi = psi + 0.02 * _random((B, S, 16, 8), torch.complex128, seed=20 + frame)


def _moving_cores(
    frame: int, topology: str, L: float
) -> list[list[list[tuple[float, float, int]]]]:
    """Well separated cores drifting along u; one crosses the seam (chart flip on Möbius)."""
    base = [
        [[(0.5, 0.3, 1), (2.5, -0.4, -1), (L - 0.25, 0.2, 1)], [(1.5, 0.0, -1), (4.0, 0.4, 1)]],
        [[(3.0, -0.3, 1)], [(0.8, 0.5, 1), (3.3, -0.5, -1), (5.0, 0.0, 1)]],
    ]
    out = []
    for env in base:
        strips = []
        for cores in env:
            moved = []
            for u, v, q in cores:
                u = u + 0.12 * frame
                if u >= L:
                    u -= L
                    if topology == "mobius":
                        v, q = -v, -q
                moved.append((u, v, q))
            strips.append(moved)
        out.append(strips)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("topology", ["mobius", "cylinder"])
def test_ages_equal_hungarian_where_links_are_unique(backend: str, topology: str) -> None:
    _require_kernel(backend)
    B, S, K = 2, 2, 16
    lat = _lattice(B, S, 32, 12, topology, torch.complex128, twist=[0.4, -1.0])
    ref = Reference(lat, K, 0.5, 2)
    tracks = VortexTracks.empty(B, S, K, "cpu")
    dts = [np.zeros(B), np.array([0.5, 0.25]), np.array([0.5, 0.5]), np.array([0.1, 0.5])]
    for frame, dt in enumerate(dts):
        psi = _imprinted(lat, _moving_cores(frame, topology, lat.strip.length), torch.complex128)
        expected = ref(psi, dt)
        m, tracks = _measure(psi, lat, tracks, dt, K, backend, min_pts=2)
        for (b, s), ages in expected["strip_ages"].items():
            n = len(ages)
            np.testing.assert_array_equal(tracks.age[b, s, :n].numpy(), ages)
            assert not tracks.age[b, s, n:].any()
        # the same ages averaged by NumPy and by torch (measured ≤ 1 ulp)
        np.testing.assert_allclose(m.mean_age.numpy(), expected["mean_age"], rtol=1e-15)
    assert float(m.mean_age.max()) > 0.9  # the cores were followed over all frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_competing_links_differ_from_hungarian(backend: str) -> None:
    """Old cores at u = 1.0 (age dt) and 1.6 (age 0), new ones at 1.35 and 1.95.

    Allowed links (track distance 0.42): 1.0→1.35 (0.35), 1.6→1.35 (0.25), 1.6→1.95 (0.35).
    Hungarian: two links, 1.0→1.35 and 1.6→1.95 (ages 2 dt and dt). Mutual nearest: only
    1.6→1.35 (age dt); 1.95 has no free allowed partner and starts at 0.
    """
    _require_kernel(backend)
    B, S, K, dt = 1, 2, 8, 0.5
    lat = _lattice(B, S, 40, 12, "mobius", torch.complex128, twist=[0.0])
    ref = Reference(lat, K, 0.42, 2)
    tracks = VortexTracks.empty(B, S, K, "cpu")
    frames = [[(1.0, 0.0, 1)], [(1.0, 0.0, 1), (1.6, 0.0, 1)], [(1.35, 0.0, 1), (1.95, 0.0, 1)]]
    for frame, cores in enumerate(frames):
        psi = _imprinted(lat, [[cores, [(4.0, 0.2, -1)]]], torch.complex128)
        expected = ref(psi, np.full(B, dt if frame else 0.0))
        m, tracks = _measure(
            psi,
            lat,
            tracks,
            np.full(B, dt if frame else 0.0),
            K,
            backend,
            track_distance=0.42,
            min_pts=2,
        )
        assert int(m.valid[0, 0].sum()) == len(cores)
    np.testing.assert_array_equal(expected["strip_ages"][0, 0], [2 * dt, dt])  # Hungarian
    np.testing.assert_array_equal(tracks.age[0, 0, :2].numpy(), [dt, 0.0])  # mutual nearest
    np.testing.assert_array_equal(tracks.age[0, 1, :1].numpy(), [2 * dt])  # unique: equal


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_torch_and_cpp_paths_agree(dtype: torch.dtype, topology: str) -> None:
    _require_kernel("cpp")
    B, S, K = 4, 2, 48
    lat = _lattice(B, S, 24, 10, topology, dtype)
    state = {b: VortexTracks.empty(B, S, K, "cpu") for b in BACKENDS}
    # a smooth random field (about 40 vortices per strip) that drifts between frames
    psi = _random((B, S, 24, 10), dtype, seed=2)
    for _ in range(2):
        psi = 0.5 * psi + 0.25 * (psi.roll(1, -2) + psi.roll(-1, -2))
    for frame in range(4):
        dt = np.linspace(0.1, 0.4, B) * (frame > 0)
        out = {}
        for b in BACKENDS:
            out[b], state[b] = _measure(psi, lat, state[b], dt, K, b, track_distance=0.6)
        mt, mc = out["torch"], out["cpp"]
        for name in ("valid", "i", "j", "charge", "overflow"):
            assert torch.equal(getattr(mt, name), getattr(mc, name)), name
        assert torch.equal(state["torch"].valid, state["cpp"].valid)
        # measured: positions and ages identical; depth and core depth ≤ 4.4e-16 (complex128)
        # and ≤ 1.2e-7 (complex64, one float32 ulp: the strip rms is summed in another
        # order); hexatic order and mean age ≤ 4.5e-16
        tol = 4e-15 if dtype == torch.complex128 else 1.2e-6
        assert torch.equal(mt.position, mc.position)
        assert torch.equal(state["torch"].age, state["cpp"].age)
        assert float((mt.depth - mc.depth).abs().max()) <= tol
        for name in FEATURES:
            a, c = getattr(mt, name), getattr(mc, name)
            atol = HEX_TOL if name in ("hexatic_order", "mean_age") else tol
            assert float((a - c).abs().max()) <= atol, name
        psi = psi + 0.03 * _random((B, S, 24, 10), dtype, seed=30 + frame)
    assert float(mt.mean_age.max()) > 0


FORBIDDEN = ("item", "cpu", "numpy", "tolist", "__bool__", "__int__", "__float__")


@pytest.fixture
def no_sync(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(name: str) -> Any:
        def fail(*args: object, **kwargs: object) -> Any:
            raise AssertionError(f"host synchronisation: {name} called")

        return fail

    for name in FORBIDDEN:
        monkeypatch.setattr(torch.Tensor, name, refuse(f"Tensor.{name}"))
    monkeypatch.setattr(torch, "nonzero", refuse("torch.nonzero"))
    yield


def test_torch_path_has_no_host_synchronisation(no_sync: None) -> None:
    B, S, K = 2, 2, 32
    lat = _lattice(B, S, 16, 8, "mobius", torch.complex64)
    psi = _random((B, S, 16, 8), torch.complex64, seed=3)
    tracks = VortexTracks.empty(B, S, K, "cpu")
    dt = torch.full((B,), 0.1, dtype=torch.float64)
    for _ in range(2):
        m, tracks = measure_vortices(
            psi,
            lat,
            tracks,
            dt,
            max_vortices=K,
            track_distance=0.5,
            min_vortices_for_order=7,
            backend="torch",
        )
        tracks = tracks.cleared(torch.tensor([True, False]))
    assert isinstance(m.hexatic_order, torch.Tensor)


def test_tracks_state_dict_clear_and_errors() -> None:
    B, S, K = 2, 2, 8
    lat = _lattice(B, S, 16, 8, "mobius", torch.complex128)
    psi = _random((B, S, 16, 8), torch.complex128, seed=4)
    _, tracks = measure_vortices(
        psi,
        lat,
        VortexTracks.empty(B, S, K, "cpu"),
        torch.zeros(B, dtype=torch.float64),
        max_vortices=K,
        track_distance=0.5,
        min_vortices_for_order=7,
    )
    restored = VortexTracks.from_state_dict({k: v.clone() for k, v in tracks.state_dict().items()})
    for name, value in tracks.state_dict().items():
        assert torch.equal(getattr(restored, name), value)
    cleared = tracks.cleared(torch.tensor([False, True]))
    assert torch.equal(cleared.valid[0], tracks.valid[0]) and not cleared.valid[1].any()
    assert not cleared.age[1].any() and not cleared.position[1].any()
    with pytest.raises(ConfigError, match="missing"):
        VortexTracks.from_state_dict({"position": tracks.position})
    kwargs: dict[str, Any] = dict(track_distance=0.5, min_vortices_for_order=7)
    dt = torch.zeros(B, dtype=torch.float64)
    with pytest.raises(ConfigError, match="max_vortices"):
        measure_vortices(psi, lat, tracks, dt, max_vortices=K + 1, **kwargs)
    with pytest.raises(ConfigError, match="dt has shape"):
        measure_vortices(psi, lat, tracks, torch.zeros(B + 1), max_vortices=K, **kwargs)
    with pytest.raises(ConfigError, match="backend"):
        bad: Any = "gpu"
        measure_vortices(psi, lat, tracks, dt, max_vortices=K, backend=bad, **kwargs)
    with pytest.raises(ConfigError, match="backend = 'cpp'"):
        measure_vortices(
            psi.to(torch.complex64), lat, tracks, dt, max_vortices=K, backend="cpp", **kwargs
        )
    with pytest.raises(ConfigError, match="track_distance"):
        measure_vortices(
            psi, lat, tracks, dt, max_vortices=K, track_distance=0.0, min_vortices_for_order=7
        )


def test_kernel_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = CppKernel(
        measure_kernel.KERNEL.name,
        measure_kernel.KERNEL.source,
        measure_kernel.KERNEL.cflags,
        "measurement kernel",
        "using the torch code",
    )
    monkeypatch.setattr(measure_kernel, "KERNEL", fresh)
    monkeypatch.setenv("HHML_CPP_KERNELS", "0")
    assert measure_kernel.load() is None
    assert "HHML_CPP_KERNELS=0" in measure_kernel.KERNEL.status.reason


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_torch_path_matches_cpu_without_synchronisation() -> None:
    """On a GPU the torch path runs without a host sync (sync debug mode "error") and
    gives the CPU kernel's integers and positions (the same float operations; atan2,
    cos and sin of the hexatic order differ by rounding)."""
    B, S, K = 8, 2, 64
    dev = torch.device("cuda")
    lat_cpu = _lattice(B, S, 24, 10, "mobius", torch.complex128)
    lat_gpu = LatticeEnsemble(
        B,
        S,
        24,
        10,
        twist=np.linspace(-2.0, 2.5, B).tolist(),
        metric="flat",
        dtype=torch.complex128,
        strip_spacing=2.0,
        device=dev,
    )
    psi = _random((B, S, 24, 10), torch.complex128, seed=7)
    tracks = {"cpu": VortexTracks.empty(B, S, K, "cpu"), "gpu": VortexTracks.empty(B, S, K, dev)}
    for frame in range(3):
        dt = torch.full((B,), 0.1 * frame, dtype=torch.float64)
        m_cpu, tracks["cpu"] = measure_vortices(
            psi,
            lat_cpu,
            tracks["cpu"],
            dt,
            max_vortices=K,
            track_distance=0.6,
            min_vortices_for_order=7,
            backend="cpp" if measure_kernel.load() else "torch",
        )
        psi_gpu, dt_gpu = psi.to(dev), dt.to(dev)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            m_gpu, tracks["gpu"] = measure_vortices(
                psi_gpu,
                lat_gpu,
                tracks["gpu"],
                dt_gpu,
                max_vortices=K,
                track_distance=0.6,
                min_vortices_for_order=7,
            )
        finally:
            torch.cuda.set_sync_debug_mode("default")
        for name in ("valid", "i", "j", "charge", "overflow"):
            assert torch.equal(getattr(m_gpu, name).cpu(), getattr(m_cpu, name)), name
        # not measured yet (no GPU in the development session): CUDA's atan2/cos/sin and
        # contracted multiply-adds inside one kernel differ from the CPU by a few ulp
        np.testing.assert_allclose(m_gpu.position.cpu(), m_cpu.position, rtol=0, atol=1e-13)
        np.testing.assert_allclose(tracks["gpu"].age.cpu(), tracks["cpu"].age, atol=1e-13)
        for name in FEATURES:
            np.testing.assert_allclose(
                getattr(m_gpu, name).cpu(),
                getattr(m_cpu, name),
                rtol=1e-12,
                atol=1e-12,
                err_msg=name,
            )
        psi = psi + 0.03 * _random((B, S, 24, 10), torch.complex128, seed=40 + frame)


# ------------------------------------------------------- kernel: neighbour ties, threads


def _kernel_module() -> Any:
    module = measure_kernel.load()
    if module is None:
        pytest.fail(f"C++ kernel unavailable: {measure_kernel.KERNEL_STATUS.reason}")
    return module


TOPOLOGY_CODE = {"mobius": 0, "cylinder": 1, "torus": 2}
# the kernel's hexatic order of given points against the torch code (ties) and
# observables.hexatic_order (generic points): measured ≤ 1.1e-16 and ≤ 2.2e-16
KERNEL_HEX_TOL = 2e-15


def _kernel_hexatic(module: Any, pts: torch.Tensor, topology: str, L: float, w: float) -> float:
    u, v = pts[:, 0].contiguous(), pts[:, 1].contiguous()
    return float(module.hexatic_points(u, v, TOPOLOGY_CODE[topology], L, w, 7, 6))


def _torch_hexatic(pts: torch.Tensor, topology: str, L: float, w: float) -> float:
    chart: Any = SimpleNamespace(topology=topology, length=L, half_width=w)
    valid = torch.ones(1, 1, len(pts), dtype=torch.bool)
    return float(_hexatic_torch(pts[None, None], valid, chart, 7, 6)[0, 0])


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_kernel_hexatic_breaks_neighbour_ties_towards_the_lower_index(topology: str) -> None:
    """Points of a square grid with dyadic coordinates (exact distances): every point has
    tied candidates at the boundary of its 6 nearest (4 at the spacing, 4 diagonal), and
    which diagonals are taken changes ψ₆. The kernel (whose rank selection sees the tie
    and hands the window to the insertion list) must take the lower indices, as the torch
    code's argmin does; the points are numbered in a shuffled order, so that the lower
    index is not the nearer one in u. The other tie rule changes the result by ≥ 1e-2;
    the kernel (which evaluates e^{6iθ} without atan2) is within KERNEL_HEX_TOL."""
    module = _kernel_module()
    L, w = 4.0, 1.0
    uu, vv = torch.meshgrid(
        torch.arange(16, dtype=torch.float64) * 0.25 + 0.125,
        torch.arange(8, dtype=torch.float64) * 0.25 - 0.875,
        indexing="ij",
    )
    grid = torch.stack([uu.flatten(), vv.flatten()], dim=-1)
    gen = torch.Generator().manual_seed(3)
    discriminates = False
    for n in (128, 90, 40):  # the full grid, then subsets with ragged holes
        pts = grid[torch.randperm(len(grid), generator=gen)[:n]]
        want = _torch_hexatic(pts, topology, L, w)
        assert abs(_kernel_hexatic(module, pts, topology, L, w) - want) <= KERNEL_HEX_TOL
        # the test has teeth: the opposite tie rule (reversed numbering) gives another value
        discriminates |= abs(_torch_hexatic(pts.flip(0), topology, L, w) - want) > 1e-6
    assert discriminates


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_kernel_hexatic_of_random_points(topology: str) -> None:
    """Generic points (no ties) against observables.hexatic_order, from below min_points
    to dense strips (first windows of 6 to 12 neighbours each side, widened or not);
    within KERNEL_HEX_TOL."""
    module = _kernel_module()
    L, w = 2 * math.pi, 1.0
    rng = np.random.default_rng(11)
    for n in (3, 6, 7, 8, 13, 30, 57, 120, 250):
        pts = np.stack([rng.uniform(0.0, L, n), rng.uniform(-w, w, n)], axis=-1)
        want = hexatic_order(pts, L, w, topology, 7)
        got = _kernel_hexatic(module, torch.from_numpy(pts), topology, L, w)
        assert abs(got - want) <= KERNEL_HEX_TOL, n


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_real_field_edges_agree_with_the_torch_path(dtype: torch.dtype, topology: str) -> None:
    """A real field (no seam twist) with complex values at every 4th row and 3rd column:
    the edge products between real nodes have a zero imaginary part, so their angle is 0
    or exactly ±π, the sign of that zero deciding (as in atan2). The kernel shares each
    edge angle between the two plaquettes beside it (the reversed edge's product has the
    negated imaginary part, +0 for +0) and must recompute the plaquettes with such an edge
    in the torch order: integers, positions and ages equal the torch path's. Measured:
    features ≤ 1.1e-16 apart, except the depths of complex64 (the strip rms is summed in
    another order: 6.0e-8, core depth 2.3e-8); tolerances 1e-15 and 6e-7."""
    _require_kernel("cpp")
    B, S, K = 2, 2, 128
    lat = _lattice(B, S, 20, 8, topology, dtype, twist=[0.0, 0.0])
    psi = _random((B, S, 20, 8), torch.float64, seed=8).to(dtype)
    psi[..., ::4, ::3] = _random(tuple(psi[..., ::4, ::3].shape), dtype, seed=9)
    state = {b: VortexTracks.empty(B, S, K, "cpu") for b in BACKENDS}
    for frame in range(2):
        dt = np.full(B, 0.2 * frame)
        out = {}
        for b in BACKENDS:
            out[b], state[b] = _measure(psi, lat, state[b], dt, K, b)
        mt, mc = out["torch"], out["cpp"]
        for name in ("valid", "i", "j", "charge", "overflow"):
            assert torch.equal(getattr(mt, name), getattr(mc, name)), name
        assert float(mc.count.min()) > 20
        assert torch.equal(mt.position, mc.position)
        assert torch.equal(state["torch"].age, state["cpp"].age)
        for name in (*FEATURES, "depth"):
            single = dtype == torch.complex64 and name in ("depth", "core_depth")
            a, c = getattr(mt, name), getattr(mc, name)
            assert float((a - c).abs().max()) <= (6e-7 if single else 1e-15), name
        psi = psi.roll(1, -2)


def test_kernel_results_do_not_depend_on_the_thread_count() -> None:
    """The kernel works strip by strip (OpenMP over strips, each strip's sums in a fixed
    order): 1 and 2 threads give bit-identical measurements and moment sums."""
    _require_kernel("cpp")
    B, S, K = 12, 2, 64
    lat = _lattice(B, S, 24, 10, "mobius", torch.complex64)
    psi = _random((B, S, 24, 10), torch.complex64, seed=12)
    psi = 0.5 * psi + 0.25 * (psi.roll(1, -2) + psi.roll(-1, -2))
    embedded = LatticeEnsemble(
        B, S, 24, 10, twist=np.linspace(-1.0, 1.0, B), strip_spacing=2.0, metric="embedded",
        dtype=torch.complex64,
    )  # fmt: skip
    _, tracks = _measure(psi, lat, VortexTracks.empty(B, S, K, "cpu"), np.zeros(B), K, "cpp")
    psi = psi + 0.05 * _random((B, S, 24, 10), torch.complex64, seed=13)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            m, t = _measure(psi, lat, tracks, np.full(B, 0.1), K, "cpp")
            runs.append((m, t, measure_kernel.moment_sums_cpu(psi, embedded)))
    finally:
        torch.set_num_threads(before)
    (m1, t1, s1), (m2, t2, s2) = runs
    for name in [f.name for f in fields(VortexMeasurement)]:
        assert torch.equal(getattr(m1, name), getattr(m2, name)), name
    assert torch.equal(t1.age, t2.age)
    assert s1 is not None and s2 is not None and torch.equal(s1, s2)
    assert float(m1.mean_age.max()) > 0


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", ["mobius", "torus"])
def test_kernel_moment_sums_against_the_torch_moments(
    dtype: torch.dtype, topology: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moment_sums_cpu (per-node products as the torch code rounds them, float64 sums)
    against the torch moments, on the Möbius band (ghost columns ±ψ) and on the torus (the
    periodic v neighbours; an embedded torus has one strip). Measured: 1.9e-7 (complex64,
    the torch code sums in float32) and 6.1e-16 (complex128) relative; tolerances 1.5e-6
    and 6e-15."""
    import hhml.ml.env.observables as observables

    _require_kernel("cpp")
    S = 2 if topology == "mobius" else 1
    ens = LatticeEnsemble(
        3, S, 20, 9, aspect=[8.0, 9.0, 10.0], kappa=[1.0, 1.4, 2.0], twist=[0.0, 0.7, -2.0],
        strip_spacing=2.0, topology=topology, metric="embedded", dtype=dtype,
    )  # fmt: skip
    psi = _random((3, S, 20, 9), dtype, seed=14) + 0.5
    assert measure_kernel.moment_sums_cpu(psi, ens) is not None
    fast = observables.moment_tensors(psi, ens)
    monkeypatch.setattr(observables, "moment_sums_cpu", lambda *args: None)
    ref = observables.moment_tensors(psi, ens)
    tol = 6e-15 if dtype == torch.complex128 else 1.5e-6
    for key, value in ref.items():
        torch.testing.assert_close(fast[key], value, rtol=tol, atol=0.0)


# ----------------------------------------------------------------------------- timing


@pytest.mark.slow
def test_timing_report() -> None:  # pragma: no cover - a report, no assertions
    """Old per-env loop vs measure_vortices (S = 2, 48 × 12, complex64, 2 threads).

    ``HHML_MEASURE_FIELD`` may name a file saved with ``torch.save({"psi": [F, B, S, 48, 12]
    complex64})`` (e.g. env snapshots); otherwise smoothed noise is used.
    """
    torch.set_num_threads(2)
    _require_kernel("cpp")
    K, S = 128, 2
    source = os.environ.get("HHML_MEASURE_FIELD")
    for B in (1, 8, 128):
        lat = LatticeEnsemble(
            B,
            S,
            48,
            12,
            twist=np.linspace(0, 1, B).tolist(),
            metric="flat",
            dtype=torch.complex64,
            strip_spacing=2.0,
            edge="neumann",
        )
        if source:
            frames = torch.load(source)["psi"]
            psi = frames[-1].repeat(math.ceil(B / frames.shape[1]), 1, 1, 1)[:B]
        else:
            psi = _random((B, S, 48, 12), torch.complex64, seed=0)
            for _ in range(2):
                psi = 0.5 * psi + 0.25 * (psi.roll(1, -2) + psi.roll(-1, -2))
        ref = Reference(lat, K, 0.5, 7)
        dt = np.full(B, 0.1)
        tracks = {b: VortexTracks.empty(B, S, K, "cpu") for b in BACKENDS}
        ref(psi, dt)
        times: dict[str, list[float]] = {"old": [], "torch": [], "cpp": []}
        for _ in range(15 if B > 8 else 40):
            t0 = time.perf_counter()
            ref(psi, dt)
            times["old"].append(time.perf_counter() - t0)
            for b in BACKENDS:
                t0 = time.perf_counter()
                _, tracks[b] = _measure(psi, lat, tracks[b], dt, K, b)
                times[b].append(time.perf_counter() - t0)
        count = _measure(psi, lat, tracks["cpp"], dt, K, "cpp")[0].count
        row = ", ".join(f"{k} {1e3 * statistics.median(v):.2f} ms" for k, v in times.items())
        print(f"B={B} ({float(count.mean()) / S:.0f} vortices/strip): {row}")
