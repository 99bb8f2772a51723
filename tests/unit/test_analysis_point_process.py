"""Point-process tools against known sets and CSR on the band."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.analysis.point_process import (
    BandChart,
    correlation_dimension,
    hexatic_statistic,
    nearest_neighbour_distance,
    pair_correlation,
    sample_csr,
    sierpinski_points,
    uniform_disk_points,
)
from hhml.core.mobius import MobiusStrip
from hhml.errors import ValidationError


def test_correlation_dimension_of_uniform_disk_is_two() -> None:
    est = correlation_dimension(uniform_disk_points(4000, seed=0), n_resamples=20, seed=0)
    assert est.value == pytest.approx(2.0, abs=0.1)  # measured 1.98 [1.95, 2.02]
    assert est.low <= 2.0 <= est.high


def test_correlation_dimension_of_sierpinski_triangle() -> None:
    est = correlation_dimension(sierpinski_points(4000, seed=0), n_resamples=20, seed=0)
    target = math.log(3.0) / math.log(2.0)
    assert est.value == pytest.approx(target, abs=0.1)  # measured 1.59 [1.56, 1.62]
    assert est.low <= target <= est.high


def test_csr_samples_follow_area_on_embedded_band() -> None:
    lat = MobiusStrip(32, 8, metric="embedded", aspect=1.5)
    chart = BandChart.from_lattice(lat)
    assert chart.area.std() / chart.area.mean() > 0.1  # the metric is far from flat
    pts = sample_csr(lat, 200_000, seed=1)[0]
    region_cells = np.zeros((32, 8), dtype=bool)
    region_cells[:8, 4:] = True  # u < L/4 and v > 0 (whole cells)
    area_fraction = chart.area[region_cells].sum() / chart.area.sum()
    inside = (pts[:, 0] < lat.length / 4) & (pts[:, 1] > 0.0)
    sigma = math.sqrt(area_fraction * (1 - area_fraction) / pts.shape[0])
    assert inside.mean() == pytest.approx(area_fraction, abs=4 * sigma)
    assert np.all(np.abs(pts[:, 1]) <= lat.half_width) and np.all(pts[:, 0] < lat.length)


def test_pair_correlation_of_csr_is_one() -> None:
    lat = MobiusStrip(32, 8, length=8.0, half_width=1.0)
    patterns = list(sample_csr(lat, 60, seed=2, n_patterns=20))
    g = pair_correlation(patterns, lat, n_bins=10, n_null=39, n_resamples=200, seed=3)
    assert g.g.shape == (10,) and g.r[0] == pytest.approx(0.05)
    assert np.mean(np.abs(g.g - 1.0)) < 0.05
    inside = (g.low <= 1.0) & (g.high >= 1.0)
    assert inside.mean() >= 0.8
    assert np.all(g.null_low < 1.0) and np.all(g.null_high > 1.0)


def triangular_lattice(a: float, n_cols: int, n_rows: int) -> np.ndarray:
    rows = np.arange(n_rows)
    cols = np.arange(n_cols)
    u = (cols[None, :] + 0.5 * (rows[:, None] % 2) + 0.25) * a
    v = (rows[:, None] + 0.5) * a * math.sqrt(3) / 2 + 0 * cols[None, :]
    return np.stack([u.ravel(), v.ravel() - n_rows * a * math.sqrt(3) / 4], axis=-1)


def test_lattice_statistics_show_order() -> None:
    a, n_cols, n_rows = 1.0, 12, 8
    w = n_rows * a * math.sqrt(3) / 4
    lat = MobiusStrip(48, 32, length=n_cols * a, half_width=w, topology="torus")
    pts = triangular_lattice(a, n_cols, n_rows)
    g = pair_correlation([pts], lat, r_max=2.0, n_bins=20, n_null=19, seed=0)
    peak = int(np.argmax(g.g))
    assert g.edges[peak] <= a < g.edges[peak + 1]
    assert g.g[peak] > g.null_high[peak]
    assert np.all(g.g[g.r < 0.8 * a] == 0.0)
    nn = nearest_neighbour_distance([pts], lat, n_null=39, seed=0)
    assert nn.value == pytest.approx(a)
    assert nn.value > nn.null_high
    hexatic = hexatic_statistic([pts], lat, n_null=19, seed=0)
    assert hexatic.value == pytest.approx(1.0)
    assert 0.2 < hexatic.null < 0.5 and hexatic.null_high < 0.6


def test_nearest_neighbour_of_csr_is_inside_its_null() -> None:
    lat = MobiusStrip(16, 8, length=6.0, half_width=1.0)
    patterns = list(sample_csr(lat, 40, seed=5, n_patterns=10))
    nn = nearest_neighbour_distance(patterns, lat, n_null=99, seed=6)
    assert nn.null_low <= nn.value <= nn.null_high
    assert nn.low < nn.value < nn.high


def test_point_process_input_errors() -> None:
    lat = MobiusStrip(8, 4)
    with pytest.raises(ValidationError, match="patterns"):
        pair_correlation(np.zeros((5, 2)), lat)
    with pytest.raises(ValidationError, match=r"patterns\[0\]"):
        nearest_neighbour_distance([np.zeros((5, 3))], lat)
    with pytest.raises(ValidationError, match="at least 2"):
        pair_correlation([np.zeros((1, 2))], lat)
    with pytest.raises(ValidationError, match="N >= 50"):
        correlation_dimension(np.zeros((10, 2)))
    assert torch.is_tensor(lat.area_weights())
