"""The C++ imprint kernels against the torch imprint code they replace.

References: :func:`cpp_imprint_angles` against the annihilation formula built from
``imprint._phase`` / ``imprint._image_distance`` and ``index_add_``;
:func:`cpp_imprint_apply` against ``psi · polar(1, that sum)``; :func:`cpp_pair_factors`
against ``imprint.pair_factors``. Measured maxima over the cases below (2-core VM, SLEEF
AVX2 build): angles 5.7e-16 (float64) and 1.1e-6 (float32) relative to the largest
|angle|; applied fields 1.6e-15 (complex128) and 1.7e-6 (complex64) relative to max |psi|;
pair factors 4.9e-15 (complex128) and 2.6e-5 (complex64) absolute (|factor| ≤ 1; in float32
the torch path rounds ``q·Φ`` near the core, the kernel multiplies unit complex numbers).
Tolerances below are under 10× those.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from hhml.core.mobius import MobiusStrip
from hhml.core.resonance.imprint import _image_distance, _phase, pair_factors
from hhml.core.resonance.imprint_kernel import (
    IMPRINT_STATUS,
    _load,
    cpp_imprint_angles,
    cpp_imprint_apply,
    cpp_pair_factors,
)

# under 10 × the largest error measured (see the module docstring)
ANGLE_TOL = {torch.complex128: 5e-15, torch.complex64: 4e-5}
PAIR_TOL = {torch.complex128: 2e-14, torch.complex64: 2e-4}
APPLY_TOL = {torch.complex128: 1.5e-14, torch.complex64: 1.5e-5}
TOPOLOGIES = ("mobius", "cylinder", "torus")


@pytest.fixture(scope="module", autouse=True)
def _kernel_built() -> None:
    if _load() is None:
        pytest.skip(f"imprint kernel unavailable: {IMPRINT_STATUS.reason}")


def _reference_angles(
    chart: MobiusStrip, u0: Tensor, v0: Tensor, w: Tensor, r: Tensor, group: Tensor, groups: int
) -> Tensor:
    """The annihilation sum: ``index_add_`` of ``w·Φ·exp(−d²/2r²)`` (as annihilate)."""
    uu, vv = chart.coordinates()
    a, b = u0[:, None, None], v0[:, None, None]
    phi = _phase(chart, uu, vv, a, b)
    d = _image_distance(chart, uu, vv, a, b)
    rr = r[:, None, None]
    angle = w[:, None, None] * phi * torch.exp(-(d * d) / (2.0 * rr * rr))
    total = torch.zeros(groups, chart.nu, chart.nv, dtype=chart.real_dtype)
    total.index_add_(0, group, angle)
    return total


def _centres(chart: MobiusStrip, n: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    f64, rd = torch.float64, chart.real_dtype
    u0 = torch.rand(n, generator=g, dtype=f64) * chart.length
    v0 = (torch.rand(n, generator=g, dtype=f64) * 1.8 - 0.9) * chart.half_width
    w = torch.randn(n, generator=g, dtype=f64)
    r = 0.2 + torch.rand(n, generator=g, dtype=f64)
    return u0.to(rd), v0.to(rd), w.to(rd), r.to(rd)


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("shape", [(48, 12), (16, 7), (5, 3)])
@pytest.mark.parametrize("targets,groups", [(0, 3), (1, 2), (40, 3), (200, 64)])
def test_angles_match_torch(
    dtype: torch.dtype, topology: str, shape: tuple[int, int], targets: int, groups: int
) -> None:
    chart = MobiusStrip(*shape, topology=topology, dtype=dtype)
    u0, v0, w, r = _centres(chart, targets, seed=targets + shape[0])
    group = torch.randint(groups, (targets,), generator=torch.Generator().manual_seed(1))
    w[: targets // 4] = 0.0  # unchosen slots add exactly 0
    ref = _reference_angles(chart, u0, v0, w, r, group, groups)
    out = cpp_imprint_angles(chart, u0, v0, w, r, group, groups)
    assert out is not None, IMPRINT_STATUS.last_skip
    assert out.dtype == chart.real_dtype and out.shape == (groups, *shape)
    scale = max(float(ref.abs().max()), 1e-30)
    assert float((out - ref).abs().max()) <= ANGLE_TOL[dtype] * scale
    if targets == 0:
        assert not out.any()


def test_angles_one_group_many_targets_float64_bitwise_close() -> None:
    """Many targets in one group: summed in increasing t, as index_add_."""
    chart = MobiusStrip(48, 12, topology="mobius", dtype=torch.complex128)
    u0, v0, w, r = _centres(chart, 30, seed=3)
    group = torch.zeros(30, dtype=torch.int64)
    ref = _reference_angles(chart, u0, v0, w, r, group, 1)
    out = cpp_imprint_angles(chart, u0, v0, w, r, group, 1)
    assert out is not None
    assert float((out - ref).abs().max()) <= ANGLE_TOL[torch.complex128] * float(ref.abs().max())


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("abs_charge", [1, 2, 3])
@pytest.mark.parametrize("core_radius", [0.0, 0.4])
def test_pair_factors_match_torch(
    dtype: torch.dtype, topology: str, abs_charge: int, core_radius: float
) -> None:
    chart = MobiusStrip(48, 12, topology=topology, dtype=dtype)
    u0, v0, w, _ = _centres(chart, 13, seed=abs_charge)
    u0[0] = 0.05  # the first core wraps through the seam (flipped on the Möbius band)
    u0[1] = chart.length - 0.05  # the second core wraps forwards
    sign = torch.where(w > 0, 1.0, -1.0).to(chart.real_dtype) * abs_charge
    for separation in (0.3, 1.7):
        ref = pair_factors(chart, u0, v0, separation, sign, core_radius, abs_charge)
        out = cpp_pair_factors(chart, u0, v0, separation, sign, core_radius, abs_charge)
        assert out is not None, IMPRINT_STATUS.last_skip
        assert out.dtype == ref.dtype == dtype and out.shape == ref.shape
        assert float((out - ref).abs().max()) <= PAIR_TOL[dtype]


def test_pair_factors_empty_and_single() -> None:
    chart = MobiusStrip(16, 7, dtype=torch.complex128)
    empty = torch.zeros(0, dtype=torch.float64)
    out = cpp_pair_factors(chart, empty, empty, 0.5, empty, 0.2)
    assert out is not None and out.shape == (0, 16, 7)
    one = torch.tensor([1.0], dtype=torch.float64)
    ref = pair_factors(chart, one, one * 0.3, 0.5, -one, 0.2)
    got = cpp_pair_factors(chart, one, one * 0.3, 0.5, -one, 0.2)
    assert got is not None
    assert float((got - ref).abs().max()) <= PAIR_TOL[torch.complex128]


def test_returns_none_outside_contract() -> None:
    chart = MobiusStrip(16, 7, dtype=torch.complex128)
    x = torch.zeros(4, dtype=torch.float64)
    group = torch.zeros(4, dtype=torch.int64)
    assert cpp_imprint_angles(chart, x.float(), x, x, x, group, 1) is None
    assert "float32" in IMPRINT_STATUS.last_skip
    assert cpp_imprint_angles(chart, x, x, x, x, group.int(), 1) is None
    assert cpp_imprint_angles(chart, x, x[:3], x, x, group, 1) is None
    assert cpp_imprint_angles(chart, x, x, x, x, group + 1, 1) is None
    assert "[0, 1)" in IMPRINT_STATUS.last_skip
    assert cpp_imprint_angles(chart, x, x, x, x, group, -1) is None
    assert cpp_pair_factors(chart, x, x, 0.5, x, 0.2, abs_charge=-1) is None
    assert cpp_pair_factors(chart, x, x, 0.5, x.float(), 0.2) is None
    meta = torch.zeros(4, dtype=torch.float64, device="meta")
    assert cpp_pair_factors(chart, meta, meta, 0.5, meta, 0.2) is None
    assert "meta" in IMPRINT_STATUS.last_skip
    assert cpp_imprint_angles(chart, x, x, x, x, group, 1) is not None
    assert IMPRINT_STATUS.last_skip == ""


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("shape,targets,groups", [((48, 12), 200, 64), ((5, 3), 40, 3)])
def test_apply_matches_psi_times_polar_of_the_torch_angles(
    dtype: torch.dtype, topology: str, shape: tuple[int, int], targets: int, groups: int
) -> None:
    chart = MobiusStrip(*shape, topology=topology, dtype=dtype)
    u0, v0, w, r = _centres(chart, targets, seed=targets)
    group = torch.randint(groups - 1, (targets,), generator=torch.Generator().manual_seed(1))
    w[: targets // 4] = 0.0
    psi = torch.randn(groups, *shape, dtype=dtype, generator=torch.Generator().manual_seed(2))
    angles = _reference_angles(chart, u0, v0, w, r, group, groups)
    ref = psi * torch.polar(torch.ones_like(angles), angles)
    out = cpp_imprint_apply(psi, chart, u0, v0, w, r, group)
    assert out is not None, IMPRINT_STATUS.last_skip
    assert out.dtype == dtype and out.shape == psi.shape
    assert float((out - ref).abs().max()) <= APPLY_TOL[dtype] * float(psi.abs().max())
    # the last group has no target: copied bit for bit
    assert torch.equal(out[-1], psi[-1])


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_far_nodes_of_a_narrow_envelope_are_left_out_only_below_the_bound(
    dtype: torch.dtype,
) -> None:
    """Nodes the kernel leaves out (exactly 0) get less than eps/256 in the torch sum."""
    chart = MobiusStrip(48, 12, topology="mobius", dtype=dtype)
    rd = chart.real_dtype
    u0, v0 = torch.tensor([1.0], dtype=rd), torch.tensor([0.2], dtype=rd)
    w, r = torch.tensor([-0.8], dtype=rd), torch.tensor([0.05], dtype=rd)
    group = torch.zeros(1, dtype=torch.int64)
    ref = _reference_angles(chart, u0, v0, w, r, group, 1)
    out = cpp_imprint_angles(chart, u0, v0, w, r, group, 1)
    assert out is not None
    left_out = (out == 0) & (ref != 0)
    assert int(left_out.sum()) > 0  # the narrow envelope leaves most rows out
    assert float(ref[left_out].abs().max()) < torch.finfo(rd).eps / 256
    assert float((out - ref).abs().max()) <= ANGLE_TOL[dtype] * float(ref.abs().max())


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
def test_pair_factors_with_a_non_integer_charge_take_the_phase_path(dtype: torch.dtype) -> None:
    """sign outside ±|q| (here ±0.5): e^{iqΦ} through atan2, cos, sin, as the torch code."""
    chart = MobiusStrip(48, 12, topology="mobius", dtype=dtype)
    u0, v0, w, _ = _centres(chart, 5, seed=7)
    sign = torch.where(w > 0, 0.5, -0.5).to(chart.real_dtype)
    ref = pair_factors(chart, u0, v0, 0.3, sign, 0.2, 1)
    out = cpp_pair_factors(chart, u0, v0, 0.3, sign, 0.2, 1)
    assert out is not None
    assert float((out - ref).abs().max()) <= PAIR_TOL[dtype]


def test_apply_returns_none_outside_contract() -> None:
    chart = MobiusStrip(16, 7, dtype=torch.complex128)
    x = torch.zeros(4, dtype=torch.float64)
    group = torch.zeros(4, dtype=torch.int64)
    psi = torch.zeros(2, 16, 7, dtype=torch.complex128)
    assert cpp_imprint_apply(psi.to(torch.complex64), chart, x, x, x, x, group) is None
    assert "complex64" in IMPRINT_STATUS.last_skip
    assert cpp_imprint_apply(psi[:, :15], chart, x, x, x, x, group) is None
    assert cpp_imprint_apply(psi, chart, x, x, x, x, group + 2) is None
    assert "[0, 2)" in IMPRINT_STATUS.last_skip
    assert cpp_imprint_apply(psi, chart, x, x, x, x, group) is not None
    assert IMPRINT_STATUS.last_skip == ""
