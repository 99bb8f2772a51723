"""Which vortices ``annihilate`` targets: the C++ selection against the tensor code and
against a direct reading of the rule.

The rule (module docstring of :mod:`hhml.ml.env.annihilation`): per env the candidates are
the tracked vortices with core depth ≥ the quality threshold; the
``min(floor((1 − p)·N), max_targets)`` deepest are targeted (none at strength 0), ties in
plaquette (column) order. The reference below is that sentence written as a sort of
Python tuples; the kernel and the tensor code must give the same targets, in the same
order, with the same packed values (exact equality: nothing is computed but a product of
two rounded numbers).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from hhml.core.resonance.imprint_kernel import IMPRINT_STATUS, _load
from hhml.ml.env.annihilation import _select_cpp, _select_torch
from hhml.ml.env.measure import VortexMeasurement

F64 = torch.float64
NAMES = ("u0", "v0", "weight", "radius", "group", "targeted")


@pytest.fixture(scope="module", autouse=True)
def _kernel_built() -> None:
    if _load() is None:
        pytest.skip(f"imprint kernel unavailable: {IMPRINT_STATUS.reason}")


def _table(B: int, S: int, K: int, seed: int, levels: int) -> VortexMeasurement:
    """Random tracked vortices; depths on ``levels`` values (many ties)."""
    g = torch.Generator().manual_seed(seed)
    shape = (B, S, K)
    valid = torch.rand(shape, generator=g) < 0.7
    depth = torch.randint(0, levels, shape, generator=g).to(F64) / max(levels - 1, 1)
    charge = torch.randint(-2, 3, shape, generator=g) * valid
    position = torch.rand((*shape, 2), generator=g, dtype=F64) * 3.0
    zeros = torch.zeros(B, dtype=F64)
    count = valid.flatten(1).sum(1).to(F64) + torch.randint(0, 3, (B,), generator=g)
    return VortexMeasurement(
        valid=valid,
        i=torch.zeros(shape, dtype=torch.int64),
        j=torch.zeros(shape, dtype=torch.int64),
        charge=charge,
        position=position,
        depth=depth * valid,
        overflow=torch.zeros((B, S), dtype=torch.bool),
        count=count,
        vortex_density=zeros,
        mean_abs_charge=zeros,
        multi_charge_fraction=zeros,
        net_charge_density=zeros,
        core_depth=zeros,
        hexatic_order=zeros,
        mean_age=zeros,
    )


def _controls(B: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed + 1)
    strength = torch.rand(B, generator=g, dtype=F64)
    strength[::5] = 0.0  # no imprint: nothing targeted
    radius = 0.05 + torch.rand(B, generator=g, dtype=F64)
    quality = torch.rand(B, generator=g, dtype=F64)
    preserve = torch.rand(B, generator=g, dtype=F64)
    preserve[1::7] = 1.0  # keep all
    preserve[2::7] = 0.0  # target up to max_targets
    return strength, radius, quality, preserve


def _reference(
    v: VortexMeasurement, strength: Tensor, quality: Tensor, preserve: Tensor, M: int
) -> list[list[int]]:
    """Per env, the targeted columns of the ``[S·K]`` table, deepest first."""
    B, S, K = v.valid.shape
    out = []
    for b in range(B):
        depth = v.depth[b].reshape(-1).tolist()
        valid = v.valid[b].reshape(-1).tolist()
        cands = [c for c in range(S * K) if valid[c] and depth[c] >= float(quality[b])]
        n = math.floor((1.0 - float(preserve[b])) * float(v.count[b]) + 1e-9)
        n = min(n, M) if float(strength[b]) > 0.0 else 0
        out.append(sorted(cands, key=lambda c: (-depth[c], c))[:n])
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "B,S,K,M,levels", [(12, 2, 16, 8, 3), (9, 3, 5, 15, 2), (7, 2, 40, 1, 50), (5, 1, 4, 4, 2)]
)
def test_the_kernel_targets_what_the_rule_and_the_tensor_code_target(
    dtype: torch.dtype, B: int, S: int, K: int, M: int, levels: int
) -> None:
    for seed in range(3):
        v = _table(B, S, K, seed, levels)
        strength, radius, quality, preserve = _controls(B, seed)
        got = _select_cpp(v, strength, radius, quality, preserve, M, dtype)
        assert got is not None, IMPRINT_STATUS.last_skip
        want = _select_torch(v, strength, radius, quality, preserve, M, dtype, compact=True)
        for name, a, b in zip(NAMES, got, want, strict=True):
            assert a.dtype == b.dtype and torch.equal(a, b), name
        # the rule read directly: which columns, in which order, and the packed values
        ref = _reference(v, strength, quality, preserve, M)
        assert got[5].tolist() == [len(r) for r in ref]
        pairs = [(b, c) for b, r in enumerate(ref) for c in r]
        assert got[4].tolist() == [b * S + c // K for b, c in pairs]
        pos = v.position.reshape(B, S * K, 2)
        assert got[0].tolist() == [float(pos[b, c, 0].to(dtype)) for b, c in pairs]
        q = v.charge.reshape(B, S * K)
        w = [float(-strength[b].to(dtype) * q[b, c].to(dtype)) for b, c in pairs]
        assert got[2].tolist() == w
        assert sum(len(r) for r in ref) > 0


def test_ties_keep_the_column_order_and_a_nan_preserve_ratio_targets_nothing() -> None:
    """One strip, five slots of equal depth but one: the deepest first, then the equal ones
    in column order; a NaN preserve ratio (a NaN action) targets nothing."""
    v = _table(2, 1, 5, 0, 2)
    v.valid[:] = True
    v.depth[:] = torch.tensor([0.5, 0.5, 0.9, 0.5, 0.5], dtype=F64)
    v.count[:] = 5.0
    one = torch.ones(2, dtype=F64)
    preserve = torch.tensor([0.4, float("nan")], dtype=F64)
    got = _select_cpp(v, one, one, 0.0 * one, preserve, 4, torch.float64)
    assert got is not None, IMPRINT_STATUS.last_skip
    assert got[5].tolist() == [3, 0]  # floor(0.6 · 5) = 3 in env 0; none in env 1
    pos = v.position[0, 0]
    assert got[0].tolist() == [float(pos[2, 0]), float(pos[0, 0]), float(pos[1, 0])]
