"""Vortex statistics over snapshots beside the i.i.d., band-limited and CSR nulls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.analysis.vortex_statistics import (
    tracking_statistics,
    vortex_counts,
    vortex_patterns,
    vortex_point_statistics,
)
from hhml.core.mobius import MobiusStrip
from hhml.core.resonance.imprint import imprint_vortex
from hhml.errors import ValidationError


def gaussian_field(lat: MobiusStrip, n_snap: int, k0: float, seed: int) -> torch.Tensor:
    """Isotropic Gaussian random field on the torus with spectrum ∝ exp(−k²/k0²)."""
    rng = np.random.default_rng(seed)
    kx = 2 * np.pi * np.fft.fftfreq(lat.nu, d=lat.du)
    ky = 2 * np.pi * np.fft.fftfreq(lat.nv, d=lat.dv)
    amp = np.exp(-0.5 * (np.hypot(kx[:, None], ky[None, :]) / k0) ** 2)
    z = rng.standard_normal((n_snap, lat.nu, lat.nv)) + 1j * rng.standard_normal(
        (n_snap, lat.nu, lat.nv)
    )
    return torch.from_numpy(np.fft.ifft2(amp * z))


def test_iid_phases_match_the_one_third_null() -> None:
    lat = MobiusStrip(32, 16, dtype=torch.complex128)
    gen = torch.Generator().manual_seed(0)
    phases = 2 * math.pi * torch.rand((10, 32, 16), generator=gen, dtype=torch.float64)
    out = vortex_counts(torch.polar(torch.ones_like(phases), phases), lat, n_null=100, seed=1)
    est = out.density_vs_iid
    assert est.null == pytest.approx(1 / 3)
    assert est.null_low <= est.value <= est.null_high
    assert est.low <= 1 / 3 <= est.high
    assert set(out.abs_charge_histogram) == {1}
    assert out.counts.shape == (10,) and out.n_plaquettes == 32 * 15


def test_gaussian_field_matches_berry_dennis() -> None:
    lat = MobiusStrip(
        64, 64, length=2 * math.pi, half_width=math.pi, topology="torus", dtype=torch.complex128
    )
    psi = gaussian_field(lat, 20, k0=2.8, seed=0)
    out = vortex_counts(psi, lat, n_null=20, seed=0)
    est = out.density_vs_band_limited
    # measured 0.00618 vs predicted 0.00625 (Berry & Dennis 2000)
    assert est.value == pytest.approx(est.null, rel=0.08)
    assert est.low <= est.null_high and est.null_low <= est.high
    assert est.value < out.density_vs_iid.null_low  # far below the i.i.d. 1/3


def test_point_statistics_of_gaussian_field_vortices() -> None:
    lat = MobiusStrip(
        48, 48, length=2 * math.pi, half_width=math.pi, topology="torus", dtype=torch.complex128
    )
    psi = gaussian_field(lat, 10, k0=3.0, seed=1)
    stats = vortex_point_statistics(
        psi, lat, r_max=2.0, n_bins=8, n_null=19, n_resamples=50, seed=0
    )
    assert stats.mean_count > 10
    g = stats.pair_correlation
    assert g.g.shape == (8,) and np.all(np.isfinite(g.g))
    assert np.all(g.null_low < 1.0) and np.all(g.null_high > 1.0)
    for est in (stats.nearest_neighbour, stats.hexatic):
        assert est is not None
        assert est.low <= est.value <= est.high
        assert est.null_low <= est.null <= est.null_high
    # the null is CSR with the same counts: mean NN distance ≈ 1 / (2 √density)
    density = stats.mean_count / (lat.length * 2 * lat.half_width)
    assert stats.nearest_neighbour.null == pytest.approx(0.5 / math.sqrt(density), rel=0.1)


def test_tracking_counts_a_seam_crossing() -> None:
    lat = MobiusStrip(64, 16, length=8.0, half_width=1.0, dtype=torch.complex128)
    frames = []
    for u0 in np.linspace(6.0, 10.0, 11):  # moves through u = L = 8 to u = 2 on the other side
        u = u0 if u0 < 8.0 else u0 - 8.0
        # carried through the seam, the vortex reappears at −v with the opposite chart charge
        v, q = (0.3, 1) if u0 < 8.0 else (-0.3, -1)
        frames.append(imprint_vortex(lat.zeros() + 1.0, lat, (u, v), charge=q, core_radius=0.2))
    psi = torch.stack(frames)
    positions, charges = vortex_patterns(psi, lat)
    assert all(p.shape == (1, 2) for p in positions)
    assert charges[0][0] == 1 and charges[-1][0] == -1
    out = tracking_statistics(psi, lat, np.arange(11.0), max_distance=0.6, n_null=10, seed=0)
    assert out.summary["n_seam_crossings"] == 1
    assert out.seam_crossing_rate.value == pytest.approx(0.1)
    assert out.seam_crossing_rate.null < out.seam_crossing_rate.value
    assert math.isnan(out.lifetime.value)  # the one track was present from the start


def test_vortex_statistics_input_errors() -> None:
    lat = MobiusStrip(8, 4, dtype=torch.complex128)
    with pytest.raises(ValidationError, match="snapshots first"):
        vortex_counts(lat.zeros(), lat)
    with pytest.raises(ValidationError, match="times"):
        tracking_statistics(lat.zeros(3), lat, [0.0, 1.0], max_distance=0.5)
