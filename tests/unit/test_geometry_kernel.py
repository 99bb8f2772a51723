"""The C++ geometry kernel against the torch geometry path it replaces on the CPU.

Reference: :meth:`MillerBandGeometry.coefficients` (coefficients, areas, distances in
float64) with the ensemble's weights ``exp(distances · (−1/ℓ))``, i.e. the torch path of
``LatticeEnsemble.set_geometry_tensors``. Measured maxima over the cases below (2-core
AMD EPYC VM, SLEEF AVX2 build): coefficients 6.9e-16 and areas 5.2e-16 relative (a few
ulp: torch's matrix product and MKL square roots round the last bit differently),
weights 3.6e-15 relative (``exp`` of up to ~40: the distance's ulp difference times
d/ℓ), the complex128 Laplacian 9.5e-17 relative to its largest value; float32 outputs
equal the torch path's (measured: no difference; asserted: one float32 ulp). Tolerances
below are 10× those. Float32 outputs are the kernel's float64 ones rounded to nearest
(checked bit for bit). Over 20 seeds of the same ranges (also 48 × 12) the maxima were
1.4e-15, 6.5e-16 and 1.1e-14.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import hhml.core.mobius.ensemble as ensemble_module
import hhml.core.mobius.geometry_kernel as geometry_kernel
from hhml.core.mobius import LatticeEnsemble
from hhml.core.mobius.ensemble_geometry import MillerBandGeometry
from hhml.core.mobius.geometry_kernel import GEOMETRY_STATUS, cpp_band_update
from hhml.errors import LatticeError
from hhml.utils.cpp_build import CppKernel
from hhml.utils.host_sync import forbid_host_sync

# 10 × the largest relative differences measured (module docstring)
COEF_RTOL = 7e-15
AREA_RTOL = 5.5e-15
WEIGHT_RTOL = 3.6e-14
LAPLACIAN_RTOL = 1e-15
F32, F64 = torch.float32, torch.float64
SPACING, LENGTH, HALF_WIDTH = 2.5, 5.0, 0.8


@pytest.fixture(scope="module", autouse=True)
def _kernel_built() -> None:
    if geometry_kernel._KERNEL.load() is None:
        pytest.skip(f"geometry kernel unavailable: {GEOMETRY_STATUS.reason}")


def _shapes(strips: int, size: int, seed: int) -> dict[str, Tensor]:
    """Different valid shapes per element (κ ∈ [0.5, 3], |δ| ≤ 0.9, aspect from its
    smallest valid value for ``strips`` strips)."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(size, dtype=F64, generator=gen)

    low = (strips - 1) * SPACING + 1.5
    return {
        "aspect": uniform(low, low + 12.5),
        "kappa": uniform(0.5, 3.0),
        "delta": uniform(-0.9, 0.9),
        "coupling_range": uniform(0.2, 3.0),
    }


def _max_rel(a: Tensor, b: Tensor) -> float:
    return float(((a - b).abs() / b.abs()).max()) if b.numel() else 0.0


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
@pytest.mark.parametrize("strips", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 5])
@pytest.mark.parametrize("grid", [(24, 8), (9, 5)])
def test_matches_the_torch_path(
    topology: str, strips: int, size: int, grid: tuple[int, int]
) -> None:
    nu, nv = grid  # (9, 5): rows and angle counts that are not multiples of the vector width
    geo = MillerBandGeometry(
        strips,
        nu,
        nv,
        strip_spacing=SPACING,
        length=LENGTH,
        half_width=HALF_WIDTH,
        topology=topology,
    )
    x = _shapes(strips, size, seed=10 * strips + size)
    shape = (x["aspect"], x["kappa"], x["delta"])
    out = cpp_band_update(
        geo,
        *shape,
        x["coupling_range"],
        coefficient_dtypes=(F64, F32),
        area_dtype=F64,
        weight_dtype=F64,
    )
    assert out is not None, GEOMETRY_STATUS.last_skip
    assert GEOMETRY_STATUS.last_skip == ""
    ref = geo.coefficients(*shape)
    weights = (ref.distances * (-1.0 / x["coupling_range"]).reshape(-1, 1, 1, 1)).exp_()
    for mine, want in zip(out.coefficients[F64], ref.coefficients, strict=True):
        assert mine.dtype == F64 and mine.shape == (size, strips, nu, nv)
        assert _max_rel(mine, want) < COEF_RTOL
    for single, double in zip(out.coefficients[F32], out.coefficients[F64], strict=True):
        assert torch.equal(single, double.to(F32))
    assert out.area is not None and out.weights is not None
    assert _max_rel(out.area, ref.area) < AREA_RTOL
    assert out.weights.shape == (size, strips - 1, nu, nv)
    assert _max_rel(out.weights, weights) < WEIGHT_RTOL
    # the float32 areas and weights are the float64 ones rounded
    single = cpp_band_update(geo, *shape, x["coupling_range"], area_dtype=F32, weight_dtype=F32)
    assert single is not None and single.area is not None and single.weights is not None
    assert single.coefficients == {}
    assert torch.equal(single.area, out.area.to(F32))
    assert torch.equal(single.weights, out.weights.to(F32))


def _ensemble(dtype: torch.dtype = torch.complex64, size: int = 5) -> LatticeEnsemble:
    x = _shapes(2, size, seed=7)
    return LatticeEnsemble(
        size,
        2,
        24,
        8,
        **{k: v.tolist() for k, v in x.items()},
        twist=0.3,
        strip_spacing=SPACING,
        length=LENGTH,
        half_width=HALF_WIDTH,
        edge="neumann",
        dtype=dtype,
    )


def _update(seed: int, size: int = 5) -> dict[str, Tensor]:
    x = _shapes(2, size, seed)
    return {**x, "twist": torch.linspace(-1.0, 1.0, size, dtype=F64)}


def _torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ensemble_module, "cpp_band_update", lambda *a, **k: None)


def test_ensemble_update_matches_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel, reference = _ensemble(), _ensemble()
    for ens in (kernel, reference):
        ens.laplacian(ens.zeros())  # the float32 coefficient cache, as in a simulation
    new = _update(seed=3)
    kernel.set_geometry_tensors(**new)
    assert GEOMETRY_STATUS.last_skip == ""
    with monkeypatch.context() as patch:
        _torch_path(patch)
        reference.set_geometry_tensors(**new)
    # float32: the rounded float64 values, within one float32 ulp of the torch path's
    eps32 = torch.finfo(F32).eps
    pairs = zip(kernel._coef_cache[F32], reference._coef_cache[F32], strict=True)
    for mine, want in pairs:
        assert mine.dtype == F32
        assert _max_rel(mine, want) <= eps32
    assert _max_rel(kernel.area_weights(), reference.area_weights()) <= eps32
    assert _max_rel(kernel.coupling_weights(), reference.coupling_weights()) <= eps32
    assert torch.equal(kernel.seam_phase, reference.seam_phase)
    # float64, computed when first read
    assert kernel._coef64_value is None
    for mine, want in zip(kernel._coef64, reference._coef64, strict=True):
        assert _max_rel(mine, want) < COEF_RTOL
    for single, double in zip(kernel._coef_cache[F32], kernel._coef64, strict=True):
        assert torch.equal(single, double.to(F32))
    bound, want_bound = kernel.spectral_radius_bound(), reference.spectral_radius_bound()
    assert abs(bound - want_bound) <= COEF_RTOL * want_bound


def test_lazy_float64_coefficients_equal_an_eager_update() -> None:
    ens = _ensemble()
    ens.laplacian(ens.zeros())
    new = _update(seed=4)
    ens.set_geometry_tensors(**new)
    assert ens._coef64_value is None  # nobody holds float64 coefficients: not written
    lazy = ens._coef64
    eager = cpp_band_update(
        ens._kernel, new["aspect"], new["kappa"], new["delta"], coefficient_dtypes=(F64,)
    )
    assert eager is not None
    for mine, want in zip(lazy, eager.coefficients[F64], strict=True):
        assert torch.equal(mine, want)
    assert ens._coef64 is lazy  # computed once
    # a complex128 Laplacian holds float64 coefficients: then they are written eagerly
    ens.laplacian(ens.zeros().to(torch.complex128))
    ens.set_geometry_tensors(**_update(seed=5))
    assert ens._coef64_value is not None
    assert ens._coef_cache[F64] is ens._coef64_value
    for single, double in zip(ens._coef_cache[F32], ens._coef64, strict=True):
        assert torch.equal(single, double.to(F32))


def test_complex128_ensemble_matches_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel, reference = _ensemble(torch.complex128), _ensemble(torch.complex128)
    psi = torch.randn(
        5, 2, 24, 8, dtype=torch.complex128, generator=torch.Generator().manual_seed(1)
    )
    kernel.laplacian(psi)
    new = _update(seed=6)
    kernel.set_geometry_tensors(**new)
    with monkeypatch.context() as patch:
        _torch_path(patch)
        reference.set_geometry_tensors(**new)
    for mine, want in zip(kernel._coef64, reference._coef64, strict=True):
        assert _max_rel(mine, want) < COEF_RTOL
    assert kernel.area_weights().dtype == F64
    assert _max_rel(kernel.area_weights(), reference.area_weights()) < AREA_RTOL
    assert _max_rel(kernel.coupling_weights(), reference.coupling_weights()) < WEIGHT_RTOL
    lap, want_lap = kernel.laplacian(psi), reference.laplacian(psi)
    assert float((lap - want_lap).abs().max()) <= LAPLACIAN_RTOL * float(want_lap.abs().max())


def test_update_makes_new_tensors_and_leaves_the_old_ones() -> None:
    ens = _ensemble()
    ens.laplacian(ens.zeros())
    old = [*ens._coef_cache[F32], ens._area, ens._weights, *ens._coef64]
    values = [t.clone() for t in old]
    ens.set_geometry_tensors(**_update(seed=8))
    new = [*ens._coef_cache[F32], ens._area, ens._weights, *ens._coef64]
    for before, value, after in zip(old, values, new, strict=True):
        assert torch.equal(before, value)  # not modified in place
        assert after is not before and after.data_ptr() != before.data_ptr()
        assert not torch.equal(after, before)


def test_same_values_with_one_or_two_threads() -> None:
    geo = MillerBandGeometry(
        3, 24, 8, strip_spacing=SPACING, length=LENGTH, half_width=HALF_WIDTH, topology="mobius"
    )
    x = _shapes(3, 9, seed=2)
    args = (x["aspect"], x["kappa"], x["delta"], x["coupling_range"])
    kw = {"coefficient_dtypes": (F64,), "area_dtype": F64, "weight_dtype": F64}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cpp_band_update(geo, *args, **kw)  # type: ignore[arg-type]
        torch.set_num_threads(2)
        two = cpp_band_update(geo, *args, **kw)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(threads)
    assert one is not None and two is not None
    for a, b in zip(one.coefficients[F64], two.coefficients[F64], strict=True):
        assert torch.equal(a, b)
    assert one.area is not None and two.area is not None
    assert one.weights is not None and two.weights is not None
    assert torch.equal(one.area, two.area)
    assert torch.equal(one.weights, two.weights)


def test_returns_none_with_the_reason_where_it_does_not_apply() -> None:
    geo = MillerBandGeometry(
        2, 8, 4, strip_spacing=SPACING, length=LENGTH, half_width=HALF_WIDTH, topology="mobius"
    )
    x = _shapes(2, 3, seed=1)
    a, k, d, ell = x["aspect"], x["kappa"], x["delta"], x["coupling_range"]
    cases = [
        ((a.to(F32), k, d), {}, "aspect is torch.float32"),
        ((a, k[:2], d), {}, "kappa has shape (2,)"),
        ((a, k, torch.empty(3, dtype=F64, device="meta")), {}, "delta is on meta"),
        ((a.clone().requires_grad_(), k, d), {}, "aspect requires grad"),
        ((a, k, d, ell), {"area_dtype": torch.float16}, "dtype torch.float16"),
        ((a, k, d), {"weight_dtype": F32}, "without coupling_range"),
    ]
    for args, kw, reason in cases:
        assert cpp_band_update(geo, *args, **kw) is None  # type: ignore[arg-type]
        assert reason in GEOMETRY_STATUS.last_skip, GEOMETRY_STATUS.last_skip
    with forbid_host_sync():
        assert cpp_band_update(geo, a, k, d, area_dtype=F64) is None
        assert "forbid_host_sync" in GEOMETRY_STATUS.last_skip
        assert cpp_band_update(geo, a, k, d, area_dtype=F64, follow_device_paths=False)
    assert GEOMETRY_STATUS.last_skip == ""


def test_disabled_kernel_leaves_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HHML_CPP_KERNELS", "0")
    disabled = CppKernel("unused", geometry_kernel._SOURCE, [], what="x", fallback="y")
    monkeypatch.setattr(geometry_kernel, "_KERNEL", disabled)
    monkeypatch.setattr(geometry_kernel, "GEOMETRY_STATUS", disabled.status)
    ens = _ensemble()
    ens.laplacian(ens.zeros())
    new = _update(seed=9)
    ens.set_geometry_tensors(**new)
    assert disabled.status.reason == "disabled by HHML_CPP_KERNELS=0"
    assert disabled.status.last_skip == "kernel unavailable: disabled by HHML_CPP_KERNELS=0"
    assert ens._coef64_value is not None  # the torch path stores float64 eagerly
    monkeypatch.undo()
    fresh = _ensemble()
    fresh.laplacian(fresh.zeros())
    fresh.set_geometry_tensors(**new)
    for mine, want in zip(ens._coef64, fresh._coef64, strict=True):
        assert _max_rel(mine, want) < COEF_RTOL


def test_flat_metric_weights_and_strided_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    # metric 'flat': only the coupling weights depend on the geometry; the env passes
    # column slices of its [B, controls] tensor (not contiguous)
    kwargs = {k: v.tolist() for k, v in _shapes(3, 4, seed=11).items()}
    common = {"strip_spacing": SPACING, "length": LENGTH, "half_width": HALF_WIDTH}
    kernel = LatticeEnsemble(4, 3, 12, 6, **kwargs, **common, metric="flat")  # type: ignore[arg-type]
    with monkeypatch.context() as patch:
        _torch_path(patch)
        reference = LatticeEnsemble(4, 3, 12, 6, **kwargs, **common, metric="flat")  # type: ignore[arg-type]
    new = _update(seed=12, size=4)
    new["aspect"] = new["aspect"] + 2.5  # room for three strips
    keys = ("aspect", "kappa", "delta", "coupling_range", "twist")
    table = torch.stack([new[k] for k in keys], 1)  # [B, 5]
    columns = dict(zip(keys, table.unbind(1), strict=True))
    assert not columns["kappa"].is_contiguous()
    kernel.set_geometry_tensors(**columns)
    assert GEOMETRY_STATUS.last_skip == ""
    with monkeypatch.context() as patch:
        _torch_path(patch)
        reference.set_geometry_tensors(**new)
    eps32 = torch.finfo(F32).eps
    assert _max_rel(kernel.coupling_weights(), reference.coupling_weights()) <= eps32
    assert torch.equal(kernel.area_weights(), reference.area_weights())  # flat: unchanged
    for mine, want in zip(kernel._coef64, reference._coef64, strict=True):
        assert torch.equal(mine, want)


def test_lazy_float64_coefficients_never_fall_back_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ens = _ensemble()
    ens.laplacian(ens.zeros())
    ens.set_geometry_tensors(**_update(seed=13))
    assert ens._coef64_value is None
    # were the kernel to refuse now, the torch path's values could differ in the last bits
    # from the float32 ones already cached: that is an error, not a fallback
    _torch_path(monkeypatch)
    with pytest.raises(LatticeError, match="float64 coefficients are due"):
        _ = ens._coef64
