"""Tests of the shared resampling helpers (bootstrap, block bootstrap, shifts, Holm, BH)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from hhml.analysis.bootstrap import (
    Estimate,
    as_generator,
    benjamini_hochberg,
    block_bootstrap_estimate,
    block_bootstrap_indices,
    bootstrap_estimate,
    circular_shift_correlations,
    circular_shift_pvalue,
    default_block_length,
    holm,
    integrated_autocorrelation_time,
    percentile_interval,
)
from hhml.errors import ConfigError, ValidationError


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.standard_normal(n + 500)
    return lfilter([1.0], [1.0, -phi], e)[500:]


def test_holm_hand_example() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> cummax
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.01, 0.02, 0.03]), [0.03, 0.04, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_bh_hand_example_and_scipy() -> None:
    # sorted p*m/i: 0.02, 0.02, 0.04, 0.04 -> reverse cummin
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(0)
    q = np.concatenate([rng.random(30), rng.random(10) * 1e-3])
    np.testing.assert_allclose(benjamini_hochberg(q), stats.false_discovery_control(q))


def test_corrections_pass_nan_through() -> None:
    out_h = holm([0.01, math.nan, 0.02])
    out_b = benjamini_hochberg([0.01, math.nan, 0.02])
    assert math.isnan(out_h[1]) and math.isnan(out_b[1])
    np.testing.assert_allclose(out_h[[0, 2]], [0.02, 0.02])
    np.testing.assert_allclose(out_b[[0, 2]], [0.02, 0.02])
    with pytest.raises(ValidationError):
        holm([0.5, 1.5])


def test_iid_bootstrap_of_mean_matches_normal_theory() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=400)
    est = bootstrap_estimate(x, lambda a: float(a.mean()), n_resamples=2000, seed=2)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert est.value == pytest.approx(x.mean())
    assert est.low == pytest.approx(x.mean() - half, abs=0.05)
    assert est.high == pytest.approx(x.mean() + half, abs=0.05)
    assert isinstance(est, Estimate) and "bootstrap" in est.method


def test_block_indices_shapes_and_blocks() -> None:
    idx = block_bootstrap_indices(10, 3, 5, seed=0)
    assert idx.shape == (5, 10) and idx.min() >= 0 and idx.max() <= 9
    # consecutive within a block (mod n)
    assert np.all((idx[:, 1] - idx[:, 0]) % 10 == 1)
    moving = block_bootstrap_indices(10, 3, 200, seed=0, circular=False)
    assert np.all((moving[:, 1] - moving[:, 0]) == 1)
    with pytest.raises(ConfigError):
        block_bootstrap_indices(10, 11, 5, seed=0)


def test_block_bootstrap_wider_than_iid_for_autocorrelated_mean() -> None:
    rng = np.random.default_rng(3)
    x = ar1(rng, 2000, 0.9)
    iid = bootstrap_estimate(x, lambda a: float(a.mean()), n_resamples=500, seed=1)
    block = block_bootstrap_estimate(x, lambda a: float(a.mean()), n_resamples=500, seed=1)
    # the variance of the mean is inflated by 2 tau = 19 for phi = 0.9
    ratio = (block.high - block.low) / (iid.high - iid.low)
    assert 2.5 < ratio < 6.0


def test_integrated_autocorrelation_time_ar1() -> None:
    rng = np.random.default_rng(4)
    assert integrated_autocorrelation_time(rng.standard_normal(20000)) == pytest.approx(
        0.5, abs=0.05
    )
    # tau = 1/2 + phi / (1 - phi) = 1.5 for phi = 0.5
    assert integrated_autocorrelation_time(ar1(rng, 20000, 0.5)) == pytest.approx(1.5, abs=0.15)
    assert default_block_length(ar1(rng, 1000, 0.5)) >= math.ceil(1000 ** (1 / 3))


def test_circular_shift_correlations_match_numpy() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    plain = circular_shift_correlations(x, y, reflect=False)
    for s in (0, 1, 17):
        assert plain[s] == pytest.approx(np.corrcoef(x, np.roll(y, -s))[0, 1])
    mirrored = circular_shift_correlations(x, y)
    cycle = np.concatenate([y, y[::-1]])
    for s in (0, 30, 77):
        window = np.roll(cycle, -s)[:50]
        assert mirrored[s] == pytest.approx(np.corrcoef(x, window)[0, 1])


def test_circular_shift_pvalue_detects_dependence() -> None:
    rng = np.random.default_rng(6)
    x = ar1(rng, 400, 0.8)
    y = 0.6 * x + ar1(rng, 400, 0.8)
    r, p, n_shifts = circular_shift_pvalue(x, y)
    assert r > 0.4 and p < 0.01 and n_shifts > 100


def test_percentile_interval_and_seed_errors() -> None:
    assert percentile_interval(np.arange(101), 0.9) == pytest.approx((5.0, 95.0))
    assert all(math.isnan(v) for v in percentile_interval([math.nan]))
    with pytest.raises(ConfigError):
        percentile_interval([1.0], level=1.5)
    with pytest.raises(ConfigError):
        as_generator("seed")  # type: ignore[arg-type]
    gen = np.random.default_rng(0)
    assert as_generator(gen) is gen
