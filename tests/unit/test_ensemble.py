"""LatticeEnsemble: element b must equal the TokamakStack with element b's geometry.

The ensemble's geometry is computed in torch with analytic derivatives
(:mod:`hhml.core.mobius.ensemble_geometry`); the references here are the NumPy
finite-difference path (per-element TokamakStacks), forward-mode autodiff of the
embedding, and the closed-form metric of a band around a circle.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hhml.config import FieldParams
from hhml.core.mobius import LatticeEnsemble, TokamakStack
from hhml.core.mobius.ensemble_geometry import MillerBandGeometry, face_coefficients
from hhml.core.resonance import Simulator, winding_numbers
from hhml.errors import ConfigError, LatticeError

GEOMETRY = dict(
    aspect=[8.0, 11.0, 6.5],
    kappa=[1.0, 1.7, 0.8],
    delta=[0.0, 0.4, -0.3],
    coupling_range=[1.0, 0.4, 2.5],
    twist=[0.0, 1.1, -2.0],
)
COMMON = dict(strip_spacing=2.0, edge="neumann", metric="embedded", dtype=torch.complex128)


def _ensemble() -> LatticeEnsemble:
    return LatticeEnsemble(3, 2, 24, 8, **GEOMETRY, **COMMON)  # type: ignore[arg-type]


def _stack(b: int, strips: int = 2, topology: str = "mobius") -> TokamakStack:
    """The NumPy reference: element ``b`` built as a TokamakStack of MobiusStrips."""
    g = {k: v[b] for k, v in GEOMETRY.items()}
    return TokamakStack(
        strips,
        24,
        8,
        kappa=g["kappa"],
        delta=g["delta"],
        aspect=g["aspect"],
        coupling_range=g["coupling_range"],
        twist=g["twist"],
        topology=topology,
        **COMMON,  # type: ignore[arg-type]
    )


def _field(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 2, 24, 8, dtype=torch.complex128, generator=gen)


#: Largest differences measured between the ensemble (torch, analytic derivatives) and the
#: per-element TokamakStacks (NumPy, fourth-order finite differences of the embedding) on
#: GEOMETRY over the three topologies; each tolerance is 10× the measured value. Relative:
#: coefficients 3.7e-11, areas 2.4e-11, coupling weights 7.5e-14, spectral bound 7.5e-12,
#: Laplacian 6.7e-12 × max|Δψ|; absolute: embedding 2.0e-13 (length), coupling 2.3e-14.
#: The metric differences are the finite-difference error of the NumPy reference (it grows
#: to 6.3e-10 at the edges of the allowed box, κ = 0.5 or 3, |δ| = 0.99): the analytic
#: metric matches forward-mode autodiff of the embedding to 2e-15
#: (test_metric_matches_autodiff_of_the_embedding).
COEF_RTOL, AREA_RTOL, WEIGHT_RTOL, BOUND_RTOL = 3.7e-10, 2.4e-10, 7.5e-13, 7.5e-11
LAP_RTOL, EMBED_ATOL, COUP_ATOL = 6.7e-11, 2e-12, 2.3e-13


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_ensemble_matches_numpy_stacks(topology: str) -> None:
    # an embedded torus has a diagonal metric only for a single (circular) strip
    strips = 1 if topology == "torus" else 2
    kw = {**COMMON, "topology": topology}
    ens = LatticeEnsemble(3, strips, 24, 8, **GEOMETRY, **kw)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(0)
    psi = torch.randn(3, strips, 24, 8, dtype=torch.complex128, generator=gen)
    lap, coup = ens.laplacian(psi), ens.coupling(psi)
    x, y, z = ens.embedding()
    bounds = []
    for b in range(3):
        stack = _stack(b, strips=strips, topology=topology)
        for mine, ref in zip(ens._coef64, stack._coef64, strict=True):
            torch.testing.assert_close(mine[b], ref, rtol=COEF_RTOL, atol=0.0)
        torch.testing.assert_close(
            ens.area_weights()[b], stack.area_weights(), rtol=AREA_RTOL, atol=0.0
        )
        torch.testing.assert_close(
            ens.coupling_weights()[b], stack.coupling_weights(), rtol=WEIGHT_RTOL, atol=0.0
        )
        for mine_xyz, ref_xyz in zip((x, y, z), stack.embedding(), strict=True):
            np.testing.assert_allclose(mine_xyz[b], ref_xyz, rtol=0.0, atol=EMBED_ATOL)
        ref_lap = stack.laplacian(psi[b])
        scale = float(ref_lap.abs().max())
        torch.testing.assert_close(lap[b], ref_lap, rtol=0.0, atol=LAP_RTOL * scale)
        torch.testing.assert_close(coup[b], stack.coupling(psi[b]), rtol=0.0, atol=COUP_ATOL)
        bounds.append(stack.spectral_radius_bound())
    assert ens.spectral_radius_bound() == pytest.approx(max(bounds), rel=BOUND_RTOL)


def test_winding_numbers_use_each_elements_twist() -> None:
    ens, psi = _ensemble(), _field(1)
    q = winding_numbers(psi, ens)
    for b in range(3):
        assert torch.equal(q[b], winding_numbers(psi[b], _stack(b)))


def test_set_geometry_changes_only_that_element_and_validates() -> None:
    ens, psi = _ensemble(), _field(2)
    before = ens.laplacian(psi)
    ens.set_geometry(kappa=[1.0, 2.5, 0.8])
    after = ens.laplacian(psi)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.allclose(before[1], after[1])
    with pytest.raises(LatticeError, match=r"aspect = 2 \(ensemble element 1\)"):
        ens.set_geometry(aspect=[8.0, 2.0, 8.0])
    with pytest.raises(LatticeError, match="unknown geometry key"):
        ens.set_geometry(aspekt=3.0)


def test_simulator_on_ensemble_matches_per_element_simulators() -> None:
    params = [
        FieldParams(source_amplitude=0.5, boundary_winding=1, coupling=0.5, diffusion=0.02),
        FieldParams(source_amplitude=0.8, boundary_winding=-2, coupling=1.0, diffusion=0.01),
        FieldParams(source_amplitude=0.3, boundary_winding=0, coupling=0.2, diffusion=0.03),
    ]
    ens = _ensemble()
    sim = Simulator(ens, params, dt=0.01, seed=3)
    psi0 = _field(4) * 0.3
    sim.psi = psi0.clone()
    sim.step(5)
    for b in range(3):
        single = Simulator(_stack(b), params[b], dt=0.01, seed=3)
        single.psi = psi0[b].clone()
        single.step(5)
        torch.testing.assert_close(sim.psi[b], single.psi, rtol=1e-10, atol=1e-12)


def test_simulator_rejects_batch_that_differs_from_ensemble_size() -> None:
    with pytest.raises(ConfigError, match="LatticeEnsemble has 3 elements"):
        Simulator(_ensemble(), FieldParams(), dt=0.01, batch=2)


def test_ensemble_twist_is_per_element() -> None:
    ens = _ensemble()
    phases = ens.seam_phase.reshape(-1)
    np.testing.assert_allclose(torch.angle(phases).numpy(), GEOMETRY["twist"], atol=1e-12)
    with pytest.raises(LatticeError, match="one twist per element"):
        _ = ens.twist
    assert math.isclose(float(ens.twists()[2, 0]), -2.0)


# ------------------------------------------------------------ analytic references
def _tensors(geometry: dict[str, list[float]]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in geometry.items()}


def _autodiff_metric(
    major: float, minor: float, kappa: float, delta: float, topology: str, grid: MillerBandGeometry
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """``√g``, ``√g g^{uu}``, ``√g g^{vv}`` (as the NumPy path defines them, from g_uu and
    g_vv) and ``|g_uv|/√(g_uu g_vv)`` by forward-mode autodiff of the embedding
    ``X(φ, v)``, written here from the definitions (frame from the autodiff tangent)."""
    from torch.func import jacfwd, vmap

    a, w = math.asin(delta), grid.half_width

    def centre(phi: torch.Tensor) -> torch.Tensor:
        big_r = major + minor * torch.cos(phi + a * torch.sin(phi))
        return torch.stack(
            [big_r * torch.cos(phi), big_r * torch.sin(phi), kappa * minor * torch.sin(phi)]
        )

    def embed(phi: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        t = jacfwd(centre)(phi)
        t = t / torch.linalg.vector_norm(t)
        e_r = torch.stack([torch.cos(phi), torch.sin(phi), torch.zeros_like(phi)])
        n1 = e_r - (e_r @ t) * t
        n1 = n1 / torch.linalg.vector_norm(n1)
        n2 = torch.linalg.cross(n1, t)
        if topology == "mobius":
            return centre(phi) + v * (torch.cos(phi / 2) * n1 + torch.sin(phi / 2) * n2)
        if topology == "cylinder":
            return centre(phi) + v * n2
        theta = math.pi * v / w
        return centre(phi) + (w / math.pi) * (torch.cos(theta) * n1 + torch.sin(theta) * n2)

    k = 2.0 * math.pi / grid.length

    def metric(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x_u = jacfwd(embed, argnums=0)(k * u, v) * k
        x_v = jacfwd(embed, argnums=1)(k * u, v)
        return torch.stack([x_u @ x_u, x_v @ x_v, x_u @ x_v])

    on_grid = vmap(vmap(metric, in_dims=(None, 0)), in_dims=(0, None))
    nu, nv, du, dv = grid.nu, grid.nv, grid.du, grid.dv
    u_c = (torch.arange(nu, dtype=torch.float64) + 0.5) * du
    v_c = (torch.arange(nv, dtype=torch.float64) + 0.5 - nv / 2) * dv
    v_f = -w + torch.arange(nv + 1, dtype=torch.float64) * dv
    centres, u_faces, v_faces = on_grid(u_c, v_c), on_grid(u_c + du / 2, v_c), on_grid(u_c, v_f)
    sqrt_g = (centres[..., 0] * centres[..., 1]).sqrt()
    a_face = (u_faces[..., 1] / u_faces[..., 0]).sqrt()
    b_faces = (v_faces[..., 0] / v_faces[..., 1]).sqrt()
    off = max(
        float((g[..., 2].abs() / (g[..., 0] * g[..., 1]).sqrt()).max())
        for g in (centres, u_faces, v_faces)
    )
    return sqrt_g, a_face, b_faces, off


#: Measured on the shapes below (up to κ = 2.5, δ = 0.8 and κ = 0.5, δ = −0.99, r = 2.4w):
#: closed-form metric vs autodiff 2.0e-15 relative, distances from the quadratic form vs
#: from the points 1.8e-15, torus g_uv ratio 1.7e-15, fused coefficients vs
#: face_coefficients(evaluate) 5.5e-16; each tolerance is 10× the measured value.
AUTODIFF_RTOL, DISTANCE_RTOL, OFFDIAGONAL_RTOL, FUSED_RTOL = 2e-14, 1.8e-14, 1.7e-14, 5.5e-15


# torch.func's first use scripts a helper with the deprecated torch.jit.script
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_metric_matches_autodiff_of_the_embedding(topology: str) -> None:
    grid = MillerBandGeometry(
        3, 12, 4, strip_spacing=1.5, length=5.0, half_width=0.8, topology=topology
    )
    shapes = {"aspect": [6.0, 9.0], "kappa": [2.5, 0.5], "delta": [0.8, -0.99]}
    geo = _tensors(shapes)
    metric = grid.evaluate(geo["aspect"], geo["kappa"], geo["delta"])
    off = grid.offdiagonal(geo["aspect"], geo["kappa"], geo["delta"])
    pts = grid.points(geo["aspect"], geo["kappa"], geo["delta"])
    for b in range(2):
        worst_off = 0.0
        for s in range(3):
            ref = _autodiff_metric(
                shapes["aspect"][b] * 0.8,
                s * 1.5 * 0.8,
                shapes["kappa"][b],
                shapes["delta"][b],
                topology,
                grid,
            )
            for mine, expected in zip(metric[:3], ref[:3], strict=True):
                torch.testing.assert_close(mine[b, s], expected, rtol=AUTODIFF_RTOL, atol=0.0)
            worst_off = max(worst_off, ref[3])
        # |g_uv| vanishes for the Möbius band and the cylinder; the torus tube frame twists
        assert float(off[b]) == pytest.approx(worst_off, rel=OFFDIAGONAL_RTOL, abs=1e-15)
        assert (worst_off < 1e-15) == (topology != "torus")
    # distances between neighbouring strips are those of the embedded points
    d_ref = torch.linalg.vector_norm(pts[:, 1:] - pts[:, :-1], dim=-1)
    torch.testing.assert_close(metric.distances, d_ref, rtol=DISTANCE_RTOL, atol=0.0)
    # the fused coefficients are face_coefficients of the metric
    fused = grid.coefficients(geo["aspect"], geo["kappa"], geo["delta"])
    reference = face_coefficients(
        metric.sqrt_g,
        metric.a_face,
        metric.b_faces,
        grid.du,
        grid.dv,
        flip=topology == "mobius",
        periodic_v=topology == "torus",
    )
    for mine, expected in zip(fused.coefficients, reference, strict=True):
        torch.testing.assert_close(mine, expected, rtol=FUSED_RTOL, atol=0.0)
    area = metric.sqrt_g * grid.du * grid.dv
    torch.testing.assert_close(fused.area, area, rtol=FUSED_RTOL, atol=0.0)
    assert torch.equal(fused.distances, metric.distances)


#: Measured: ≤ 6.5e-16 relative to the closed form (a few ulp); tolerance 10× that.
CIRCLE_RTOL = 6.5e-15


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_circle_centreline_has_the_closed_form_metric(topology: str) -> None:
    # κ = 1, δ = 0, r = 0: X = (R + v cos(φ/2)) e_R + v sin(φ/2) e_z on the Möbius band, so
    # g_uu = k²((R + v cos(φ/2))² + v²/4), g_vv = 1; cylinder g_uu = k²R²; torus
    # g_uu = k²(R + ρ cos ϑ)², ϑ = πv/w, ρ = w/π (k = 2π/L).
    L, w, nu, nv, aspect = 7.0, 1.3, 16, 6, 5.0
    ens = LatticeEnsemble(
        1, 1, nu, nv, aspect=aspect, length=L, half_width=w, topology=topology,
        metric="embedded", dtype=torch.complex128,
    )  # fmt: skip
    k, R, du, dv = 2 * math.pi / L, aspect * w, L / nu, 2 * w / nv
    u_c = (torch.arange(nu, dtype=torch.float64)[:, None] + 0.5) * du
    v_c = (torch.arange(nv, dtype=torch.float64)[None, :] + 0.5 - nv / 2) * dv
    v_f = -w + torch.arange(nv + 1, dtype=torch.float64)[None, :] * dv

    def root_g_uu(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        phi = k * u
        if topology == "mobius":
            return k * torch.sqrt((R + v * torch.cos(phi / 2)) ** 2 + v**2 / 4)
        if topology == "cylinder":
            return k * R * torch.ones_like(u * v)
        return k * (R + (w / math.pi) * torch.cos(math.pi * v / w)) * torch.ones_like(u)

    sqrt_g = root_g_uu(u_c, v_c)
    a_plus, b = 1.0 / root_g_uu(u_c + du / 2, v_c), root_g_uu(u_c, v_f)
    # shared faces: the −u face of cell 0 is the seam face (v flipped on the Möbius band);
    # the torus's −v face of cell 0 is the +v face of cell nv − 1
    seam = a_plus[-1:].flip(-1) if topology == "mobius" else a_plus[-1:]
    a_minus = torch.cat([seam, a_plus[:-1]])
    b_minus = torch.cat([b[:, -1:], b[:, 1:-1]], dim=1) if topology == "torus" else b[:, :-1]
    expected = (
        a_plus / (sqrt_g * du * du),
        a_minus / (sqrt_g * du * du),
        b[:, 1:] / (sqrt_g * dv * dv),
        b_minus / (sqrt_g * dv * dv),
    )
    for mine, ref in zip(ens._coef64, expected, strict=True):
        torch.testing.assert_close(mine[0, 0], ref, rtol=CIRCLE_RTOL, atol=0.0)
    torch.testing.assert_close(
        ens.area_weights()[0, 0], sqrt_g * du * dv, rtol=CIRCLE_RTOL, atol=0.0
    )


# ------------------------------------------------------------------ tensor path
def _changed_geometry() -> dict[str, list[float]]:
    new = {k: list(v) for k, v in GEOMETRY.items()}
    new["aspect"][0] = 9.5  # element 0: shape
    new["kappa"][2] = 2.2  # element 2: shape
    new["coupling_range"][1] = 0.7  # element 1: coupling and twist only
    new["twist"][1] = 0.3
    return new


def test_partial_update_equals_a_full_rebuild() -> None:
    ens, psi = _ensemble(), _field(5)
    ens.laplacian(psi.to(torch.complex64))  # fills the float32 coefficient cache
    before = [c.clone() for c in ens._coef64]
    new = _changed_geometry()
    ens.set_geometry_tensors(**_tensors(new))
    fresh = LatticeEnsemble(3, 2, 24, 8, **new, **COMMON)  # type: ignore[arg-type]
    for mine, ref, old in zip(ens._coef64, fresh._coef64, before, strict=True):
        assert torch.equal(mine, ref)
        assert torch.equal(mine[1], old[1])  # element 1's shape did not change
    assert torch.equal(ens.area_weights(), fresh.area_weights())
    assert torch.equal(ens.coupling_weights(), fresh.coupling_weights())
    assert torch.equal(ens.seam_phase, fresh.seam_phase)
    # the cached float32 copies follow the new coefficients
    for cast, ref in zip(ens._coef_cache[torch.float32], fresh._coef64, strict=True):
        assert torch.equal(cast, ref.to(torch.float32))
    assert torch.equal(ens.laplacian(psi), fresh.laplacian(psi))
    assert torch.equal(
        ens.laplacian(psi.to(torch.complex64)), fresh.laplacian(psi.to(torch.complex64))
    )
    assert ens.state_dict() == fresh.state_dict()
    np.testing.assert_array_equal(ens.geometry()["kappa"], new["kappa"])


#: ATen ops that copy a device value to the host or size an output from values.
_SYNCING_OPS = {
    "aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::nonzero",
    "aten::masked_select", "aten::unique", "aten::_unique2", "aten::repeat_interleave",
    "aten::_to_cpu", "aten::equal",
}  # fmt: skip
_SYNCING = (
    "item", "cpu", "numpy", "tolist", "nonzero", "__bool__", "__float__", "__int__",
    "__index__", "__array__",
)  # fmt: skip


def test_set_geometry_tensors_never_reads_a_tensor_on_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ens = _ensemble()
    ens.laplacian(_field().to(torch.complex64))
    new = _tensors(_changed_geometry())

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("host synchronisation in set_geometry_tensors")

    with monkeypatch.context() as patch:
        for name in _SYNCING:
            patch.setattr(torch.Tensor, name, forbidden)
        patch.setattr(torch, "nonzero", forbidden)
        with pytest.raises(AssertionError, match="host synchronisation"):
            bool(new["aspect"][0])  # the guard is active
        with torch.profiler.profile() as prof:
            ens.set_geometry_tensors(**new)
    # nor does torch read a value inside (what .item() and data-dependent shapes run on)
    ops = {event.key for event in prof.key_averages()}
    assert ops.isdisjoint(_SYNCING_OPS), ops & _SYNCING_OPS
    fresh = LatticeEnsemble(3, 2, 24, 8, **_changed_geometry(), **COMMON)  # type: ignore[arg-type]
    for mine, ref in zip(ens._coef64, fresh._coef64, strict=True):
        assert torch.equal(mine, ref)
    assert torch.equal(ens.coupling_weights(), fresh.coupling_weights())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_set_geometry_tensors_does_not_synchronise_a_cuda_device() -> None:
    ens = LatticeEnsemble(
        3, 2, 24, 8, **GEOMETRY, **{**COMMON, "device": "cuda"}  # type: ignore[arg-type]
    )
    new = {k: v.to("cuda") for k, v in _tensors(_changed_geometry()).items()}
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        ens.set_geometry_tensors(**new)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    fresh = LatticeEnsemble(3, 2, 24, 8, **_changed_geometry(), **COMMON)  # type: ignore[arg-type]
    for mine, ref in zip(ens._coef64, fresh._coef64, strict=True):
        torch.testing.assert_close(mine.cpu(), ref, rtol=1e-13, atol=0.0)


def test_set_geometry_tensors_checks_dtype_shape_and_device() -> None:
    ens, geo = _ensemble(), _tensors(GEOMETRY)
    with pytest.raises(LatticeError, match=r"kappa is torch.float32 \(3,\)"):
        ens.set_geometry_tensors(**{**geo, "kappa": geo["kappa"].float()})
    with pytest.raises(LatticeError, match=r"twist is torch.float64 \(2,\)"):
        ens.set_geometry_tensors(**{**geo, "twist": geo["twist"][:2]})
    with pytest.raises(LatticeError, match="aspect is list"):
        ens.set_geometry_tensors(**{**geo, "aspect": [8.0, 11.0, 6.5]})  # type: ignore[arg-type]


def test_embedded_torus_stack_is_rejected_and_flat_one_accepted() -> None:
    with pytest.raises(LatticeError, match=r"not diagonal .* ensemble element 0"):
        LatticeEnsemble(2, 2, 16, 4, topology="torus", strip_spacing=2.0, aspect=8.0)
    ens = LatticeEnsemble(2, 2, 16, 4, topology="torus", strip_spacing=2.0, metric="flat")
    assert torch.equal(ens.area_weights(), ens.strip.area_weights().expand(2, 2, 16, 4))
    assert ens.coupling_weights().shape == (2, 1, 16, 4)


def test_host_views_of_the_geometry() -> None:
    ens = _ensemble()
    geo = ens.geometry()
    assert set(geo) == set(GEOMETRY)
    for key, values in GEOMETRY.items():
        assert geo[key].dtype == np.float64
        np.testing.assert_array_equal(geo[key], values)
    geo["aspect"][0] = 99.0  # a copy
    assert ens.geometry()["aspect"][0] == 8.0
    twists = ens.twists()
    assert twists.shape == (3, 1) and twists.dtype == torch.float64
    assert twists.device == ens.device
    assert ens.state_dict()["geometry"] == GEOMETRY
    x, y, z = ens.embedding()
    assert x.shape == y.shape == z.shape == (3, 2, 24, 8)
