"""Conservation drifts: exact cases and the integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.analysis.conservation import conservation_drifts, drift, field_norm, nls_energy
from hhml.core.mobius import MobiusStrip
from hhml.errors import ValidationError


def test_constant_series_has_zero_drift() -> None:
    d = drift(np.full(50, 4.0), name="norm")
    assert d.slope == pytest.approx(0.0, abs=1e-14)
    assert d.slope_low == pytest.approx(0.0, abs=1e-14)
    assert d.slope_high == pytest.approx(0.0, abs=1e-14)
    assert d.max_relative_deviation == 0.0 and d.null == 0.0


def test_linear_series_drift_equals_slope() -> None:
    t = np.linspace(0.0, 5.0, 40)
    d = drift(3.0 + 2.0 * t, t, name="energy")
    assert d.slope == pytest.approx(2.0)
    assert d.relative_slope == pytest.approx(2.0 / 3.0)
    assert d.final_relative_change == pytest.approx(10.0 / 3.0)
    assert d.slope_low == pytest.approx(2.0) and d.slope_high == pytest.approx(2.0)


def test_noisy_drift_interval_covers_the_slope() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(400, dtype=float)
    x = 1.0 + 1e-3 * t + 0.05 * rng.standard_normal(400)
    out = conservation_drifts({"norm": x, "energy": x[::-1].copy()}, t, seed=1)
    assert out["norm"].slope_low < 1e-3 < out["norm"].slope_high
    assert out["energy"].slope < 0.0
    with pytest.raises(ValidationError, match="times"):
        drift(x, t[::-1])


def test_norm_and_energy_of_a_plane_wave() -> None:
    lat = MobiusStrip(
        16, 8, length=2 * math.pi, half_width=1.0, topology="torus", dtype=torch.complex128
    )
    uu, _ = lat.coordinates()
    k = 3.0
    amp = 0.7
    psi = amp * torch.exp(1j * k * uu)
    area = lat.length * 2 * lat.half_width
    assert field_norm(psi[None], lat)[0] == pytest.approx(amp**2 * area)
    alpha, beta = 0.5, 2.0
    k2_lattice = (2 - 2 * math.cos(k * lat.du)) / lat.du**2
    expected = (alpha * k2_lattice * amp**2 + 0.5 * beta * amp**4) * area
    assert float(nls_energy(psi, lat, alpha, beta)) == pytest.approx(expected)
