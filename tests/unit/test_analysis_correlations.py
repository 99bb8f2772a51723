"""g1 along u through the seam, correlation length, and power spectra."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.analysis.correlations import double_cover, field_correlation, power_spectrum
from hhml.core.mobius import MobiusStrip
from hhml.errors import ValidationError


def mobius_ar1_field(
    rng: np.random.Generator, n_snap: int, nu: int, nv: int, rho: float
) -> np.ndarray:
    """Complex Gaussian field, exponentially correlated along u on the Möbius band.

    Rows ``j`` and ``nv−1−j`` form one circular AR(1) process of length ``2 nu`` (the double
    cover), so ``ψ(u+L, v) = ψ(u, −v)`` holds and the correlation is ``ρ^{|s|/Δu}``.
    """
    n = 2 * nu
    m = np.arange(n)
    spectrum = (1 - rho**2) / np.abs(1 - rho * np.exp(-2j * np.pi * m / n)) ** 2
    z = rng.standard_normal((n_snap, nv // 2, n)) + 1j * rng.standard_normal((n_snap, nv // 2, n))
    x = np.fft.ifft(np.sqrt(spectrum) * z / math.sqrt(2), axis=-1) * math.sqrt(n)
    psi = np.empty((n_snap, nu, nv), dtype=np.complex128)
    for j in range(nv // 2):
        psi[:, :, j] = x[:, j, :nu]
        psi[:, :, nv - 1 - j] = x[:, j, nu:]
    return psi


def test_correlation_length_of_exponential_field() -> None:
    lat = MobiusStrip(64, 16, dtype=torch.complex128)
    rho = 0.8
    xi_true = -lat.du / math.log(rho)
    psi = mobius_ar1_field(np.random.default_rng(0), 40, 64, 16, rho)
    out = field_correlation(torch.from_numpy(psi), lat, n_resamples=300, n_null=19, seed=1)
    xi = out.correlation_length
    assert xi.low <= xi_true <= xi.high
    assert xi.value == pytest.approx(xi_true, rel=0.1)
    np.testing.assert_allclose(np.abs(out.g1[:6]), rho ** np.arange(6), atol=0.03)
    assert out.g1[0] == pytest.approx(1.0)
    # beyond a few correlation lengths |g1| is within the shuffled-field null
    far = out.lag > 6 * xi_true
    assert np.mean(np.abs(out.g1[far]) <= out.null_high[far]) > 0.8


def test_g1_continues_through_the_mobius_seam() -> None:
    """f(v) e^{iπu/L} with f odd is a Möbius mode: g1(s) = e^{iπs/L} for every shift."""
    lat = MobiusStrip(32, 8, dtype=torch.complex128)
    uu, vv = lat.coordinates()
    mode = vv * torch.exp(1j * math.pi * uu / lat.length)
    psi = torch.stack([mode, 2.0 * mode * np.exp(0.3j)])
    out = field_correlation(psi, lat, max_lag=31, n_resamples=10, n_null=2)
    expected = np.exp(1j * math.pi * out.lag / lat.length)
    np.testing.assert_allclose(out.g1, expected, atol=1e-12)
    assert math.isinf(out.correlation_length.value)  # no decay


def test_double_cover_applies_the_identification() -> None:
    lat = MobiusStrip(4, 3, twist=0.7)
    psi = np.arange(12, dtype=np.complex128).reshape(4, 3)
    ext = double_cover(psi, lat)
    np.testing.assert_allclose(ext[4:], np.exp(0.7j) * psi[:, ::-1])


def test_power_spectrum_modes_and_parseval() -> None:
    lat = MobiusStrip(32, 8, dtype=torch.complex128)
    uu, vv = lat.coordinates()
    mode = vv * torch.exp(1j * math.pi * uu / lat.length)  # k = π/L, odd in v
    psi = torch.stack([mode, mode])
    ps = power_spectrum(psi, lat, n_resamples=10)
    assert ps.k[np.argmax(ps.power)] == pytest.approx(math.pi / lat.length)
    assert ps.power.sum() == pytest.approx(float((psi.abs() ** 2).mean()))
    assert ps.white == pytest.approx(ps.power.sum() / 64)

    twist = 0.9
    cyl = MobiusStrip(32, 8, topology="cylinder", twist=twist, dtype=torch.complex128)
    uu, _ = cyl.coordinates()
    k0 = (2 * math.pi * 3 + twist) / cyl.length
    wave = torch.exp(1j * k0 * uu)
    ps = power_spectrum(torch.stack([wave, wave]), cyl, n_resamples=10)
    assert ps.k[np.argmax(ps.power)] == pytest.approx(k0)
    assert ps.power.max() == pytest.approx(1.0)


def test_white_noise_spectrum_is_flat_within_interval() -> None:
    lat = MobiusStrip(32, 8, topology="cylinder", dtype=torch.complex128)
    rng = np.random.default_rng(2)
    psi = rng.standard_normal((60, 32, 8)) + 1j * rng.standard_normal((60, 32, 8))
    ps = power_spectrum(torch.from_numpy(psi), lat, n_resamples=300, seed=0)
    inside = (ps.low <= ps.white) & (ps.white <= ps.high)
    assert inside.mean() > 0.85


def test_correlation_input_errors() -> None:
    lat = MobiusStrip(8, 4, dtype=torch.complex128)
    with pytest.raises(ValidationError, match="snapshots"):
        field_correlation(torch.ones(1, 8, 4, dtype=torch.complex128), lat)
    with pytest.raises(ValidationError, match="complex"):
        power_spectrum(np.ones((3, 8, 4)), lat)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="zero"):
        field_correlation(torch.zeros(3, 8, 4, dtype=torch.complex128), lat)
