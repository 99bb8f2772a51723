"""Parameter–outcome correlations: false-positive rate under autocorrelation, power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from hhml.analysis.parameter_outcome import correlation_test, parameter_outcome_correlations
from hhml.errors import ConfigError, ValidationError


def ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    e = rng.standard_normal((*shape[:-1], shape[-1] + 500))
    return lfilter([1.0], [1.0, -phi], e, axis=-1)[..., 500:]


def test_false_positive_rate_of_independent_ar1_pairs() -> None:
    """Independent AR(1) pairs (phi = 0.9, T = 300), 200 replicates, alpha = 0.05."""
    rng = np.random.default_rng(0)
    x, y = ar1(rng, (200, 300), 0.9), ar1(rng, (200, 300), 0.9)
    tests = [
        correlation_test(a, b, method="pearson", n_resamples=0) for a, b in zip(x, y, strict=True)
    ]
    shift_rate = np.mean([t.p_value <= 0.05 for t in tests])
    naive_rate = np.mean([t.p_naive <= 0.05 for t in tests])
    assert shift_rate <= 0.10  # ≤ 2 alpha (this seed: 0.09; 1000 replicates: 0.066)
    assert naive_rate >= 0.30  # the textbook test is fooled (this seed: 0.53; 1000: 0.55)


def test_linear_dependence_is_detected_with_interval() -> None:
    rng = np.random.default_rng(1)
    x = ar1(rng, (600,), 0.8)
    y = x + ar1(rng, (600,), 0.8)  # population r = 1/sqrt(2)
    for method in ("pearson", "spearman"):
        t = correlation_test(x, y, method=method, n_resamples=500, seed=2)
        assert t.p_value < 0.01
        assert t.r_low < t.r < t.r_high
        assert t.r_low < 1 / np.sqrt(2) + 0.03 and t.r_high > 1 / np.sqrt(2) - 0.08
        assert t.block_length >= 5  # 2 tau = 9 for phi = 0.8


def test_parameter_outcome_table_with_corrections() -> None:
    rng = np.random.default_rng(3)
    T, P = 1000, 23  # the smallest shift p-value is 1 / (1 + ~2T); Holm over 44 needs T ≳ 500
    params = ar1(rng, (P, T), 0.7).T
    reward = 0.8 * params[:, 4] + ar1(rng, (T,), 0.7)
    density = ar1(rng, (T,), 0.7)
    params[:, 10] = 1.0  # a parameter that never moved
    names = [f"p{i}" for i in range(P)]
    out = parameter_outcome_correlations(
        params, {"reward": reward, "vortex_density": density}, names, n_resamples=200, seed=0
    )
    assert len(out.tests) == 2 * P and out.n_tests == 2 * (P - 1)
    by_key = {(t.parameter, t.outcome): t for t in out.tests}
    hit = by_key[("p4", "reward")]
    assert hit.p_holm <= 0.05 and hit.p_bh <= 0.05
    assert np.isnan(by_key[("p10", "reward")].r)
    for t in out.tests:
        if np.isfinite(t.p_value):
            assert t.p_value <= t.p_bh <= t.p_holm <= 1.0
    assert [t.parameter for t in out.significant(0.05, "holm")] == ["p4"]
    assert out.table()[0]["parameter"] == "p0"


def test_bad_inputs_name_the_problem() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(ValidationError, match="parameter_names"):
        parameter_outcome_correlations(rng.random((50, 3)), {"r": rng.random(50)}, ["a", "b"])
    with pytest.raises(ValidationError, match="'r'"):
        parameter_outcome_correlations(rng.random((50, 2)), {"r": rng.random(49)}, ["a", "b"])
    with pytest.raises(ValidationError, match="reward"):
        correlation_test(rng.random(50), rng.random(5), y_name="reward")
    with pytest.raises(ConfigError, match="method"):
        correlation_test(rng.random(50), rng.random(50), method="kendall")  # type: ignore[arg-type]
