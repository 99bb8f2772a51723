"""Two-sample statistics and the end-to-end dark-matter analysis."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch

from hhml.analysis.dark_matter import (
    DISCLAIMER,
    PruningCriterion,
    compare_samples,
    compare_topologies,
    run_dark_matter_analysis,
)
from hhml.config import HHmLConfig
from hhml.config.schema import FieldParams, LatticeConfig, SimulationConfig
from hhml.core.mobius import MobiusStrip
from hhml.errors import ConfigError, LatticeError


def test_compare_samples_detects_a_shift_and_not_its_absence() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(0, 1, 40)
    same = compare_samples(a, b, quantity="x", n_boot=200, n_permutations=500, seed=1)
    assert same.mann_whitney_p > 0.05 and same.permutation_p > 0.05
    assert abs(same.rank_biserial) < 0.3
    assert same.ci_a[0] <= same.mean_a <= same.ci_a[1]
    shifted = compare_samples(a + 3.0, b, quantity="x", n_boot=200, n_permutations=500)
    assert shifted.mann_whitney_p < 1e-6 and shifted.rank_biserial > 0.9
    assert shifted.permutation_p == pytest.approx(1 / 501)
    empty = compare_samples(np.array([]), b, quantity="x", labels=("p", "k"))
    assert math.isnan(empty.mann_whitney_p) and "'p' is empty" in empty.note
    json.dumps(empty.to_dict())


def test_compare_topologies_pairs_primary_with_each_control() -> None:
    rng = np.random.default_rng(1)
    samples = {t: {"q": rng.normal(size=10)} for t in ("mobius", "cylinder", "torus")}
    out = compare_topologies(samples, "mobius", n_boot=10, n_permutations=10)
    assert set(out) == {"mobius_vs_cylinder", "mobius_vs_torus"}
    assert out["mobius_vs_torus"]["q"].label_b == "torus"


def _small(**kwargs: Any) -> dict[str, Any]:
    lat = MobiusStrip(16, 6, edge="neumann", dtype=torch.complex128)
    args: dict[str, Any] = dict(
        n_branches=4, t_end=1.0, warmup=1.0, n_records=5, n_boot=50, n_permutations=50
    )
    args.update(kwargs)
    return run_dark_matter_analysis(lat, **args).to_dict()


def test_end_to_end_result_is_json_and_reproducible() -> None:
    d = _small(seed=3)
    text = json.dumps(d)
    assert DISCLAIMER in text and "declared before evolution" in d["criterion"]["statement"]
    assert set(d["topologies"]) == {"mobius", "cylinder", "torus"}
    assert set(d["comparisons"]) == {"mobius_vs_cylinder", "mobius_vs_torus"}
    mob = d["topologies"]["mobius"]
    assert len(mob["fidelity_matrix"]) == 4 and len(mob["retention"]["null_retained"]) == 25
    assert mob["null_mean_fidelity_sq"] == pytest.approx(1 / 96)
    assert d["settings"]["dof"] == 96 and d["settings"]["params"]["noise_temperature"] == 0.0
    assert d == _small(seed=3)
    assert d != _small(seed=4)


def test_given_snapshot_kind_and_criterion_without_controls() -> None:
    g = torch.Generator()
    g.manual_seed(0)
    psi0 = 1.0 + 0.1 * torch.randn(16, 6, dtype=torch.complex128, generator=g)
    d = _small(
        psi0=psi0,
        kind="pair",
        epsilon=0.5,
        controls=False,
        criterion=PruningCriterion(threshold=0.5, reference="centroid"),
    )
    assert list(d["topologies"]) == ["mobius"] and d["comparisons"] == {}
    assert d["settings"]["snapshot"] == "given" and d["criterion"]["reference"] == "centroid"


def test_config_source_and_errors() -> None:
    cfg = HHmLConfig(
        lattice=LatticeConfig(nu=12, nv=4, metric="flat", topology="cylinder"),
        dynamics=FieldParams(),
        simulation=SimulationConfig(device="cpu", dt=0.05),
    )
    d = run_dark_matter_analysis(
        cfg, n_branches=2, t_end=0.5, warmup=0.5, n_boot=10, n_permutations=10, controls=False
    ).to_dict()
    assert d["primary"] == "cylinder" and d["settings"]["lattice"]["dtype"] == "complex64"
    with pytest.raises(ConfigError, match="n_branches"):
        run_dark_matter_analysis(n_branches=1)
    with pytest.raises(LatticeError, match="psi0"):
        run_dark_matter_analysis(psi0=torch.ones(3, 3, dtype=torch.complex128))
    with pytest.raises(ConfigError, match="warmup"):
        run_dark_matter_analysis(warmup=-1.0)
