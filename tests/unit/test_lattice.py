"""Tests of the band lattices (`MobiusStrip`, `TokamakStack`) against independent references.

References used here: closed-form discrete spectra (``analytic_flat_spectrum`` and the 2-D
periodic formula derived below), explicit eigenfunctions, stencil entries derived by hand from
the seam rule of DESIGN §3, and the exact area of the embedded band (``scipy.integrate``).
Every operator matrix is built here by applying ``laplacian`` to unit fields.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.errors import LatticeError
from hhml.validation.references import analytic_flat_spectrum

C128 = torch.complex128


def laplacian_matrix(lattice: MobiusStrip) -> np.ndarray:
    """Dense matrix M with M[:, c] = Δ e_c (row-major flat index over [nu, nv])."""
    n = lattice.nu * lattice.nv
    units = torch.eye(n, dtype=C128).reshape(n, lattice.nu, lattice.nv)
    columns = lattice.laplacian(units).reshape(n, n)
    return columns.T.numpy()


def rel_max_error(measured: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(measured - reference).max() / np.abs(reference).max())


# ---------------------------------------------------------------------------------------------
# coordinates


def test_cell_centred_coordinates_follow_the_design_formula() -> None:
    lat = MobiusStrip(7, 5, length=3.3, half_width=0.7, dtype=C128)
    du, dv = 3.3 / 7, 1.4 / 5
    assert lat.du == pytest.approx(du, rel=1e-15)
    assert lat.dv == pytest.approx(dv, rel=1e-15)
    np.testing.assert_allclose(lat.u.numpy(), (np.arange(7) + 0.5) * du, rtol=0, atol=1e-15)
    np.testing.assert_allclose(lat.v.numpy(), -0.7 + (np.arange(5) + 0.5) * dv, rtol=0, atol=1e-15)
    uu, vv = lat.coordinates()
    assert uu.shape == vv.shape == (7, 5)
    assert torch.equal(uu[:, 3], lat.u) and torch.equal(vv[2], lat.v)


def test_v_coordinates_are_symmetric_to_rounding() -> None:
    for nv in range(2, 30):
        for w in (1.0, 0.3, 0.7, 2.5, math.pi):
            lat = MobiusStrip(4, nv, half_width=w, dtype=C128)
            np.testing.assert_allclose(-lat.v.numpy(), lat.v.flip(0).numpy(), rtol=0, atol=1e-15)


def test_v_coordinates_are_exactly_antisymmetric() -> None:
    broken = []
    for nv in range(2, 30):
        for w in (1.0, 0.3, 0.7, 2.5, math.pi):
            lat = MobiusStrip(4, nv, half_width=w, dtype=C128)
            if not torch.equal(-lat.v, lat.v.flip(0)):
                broken.append((nv, w))
    assert broken == []


# ---------------------------------------------------------------------------------------------
# flat spectra


@pytest.mark.parametrize("topology", ["mobius", "cylinder"])
@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
@pytest.mark.parametrize("twist", [0.0, 1.1])
def test_flat_laplacian_spectrum_equals_analytic(topology: str, edge: str, twist: float) -> None:
    nu, nv = 10, 5
    lat = MobiusStrip(
        nu, nv, length=4.0, half_width=0.8, topology=topology, edge=edge, twist=twist, dtype=C128
    )
    m = laplacian_matrix(lat)
    assert np.abs(m - m.conj().T).max() <= 1e-12 * np.abs(m).max()  # flat: Hermitian
    measured = np.sort(np.linalg.eigvalsh(m))
    reference = analytic_flat_spectrum(nu, nv, 4.0, 0.8, edge, twist, flip=(topology == "mobius"))
    assert rel_max_error(measured, reference) <= 1e-10


def test_mobius_and_cylinder_spectra_differ() -> None:
    # the flip matters: otherwise the two spectra above would test the same thing
    a = analytic_flat_spectrum(10, 5, 4.0, 0.8, "dirichlet", 0.0, flip=True)
    b = analytic_flat_spectrum(10, 5, 4.0, 0.8, "dirichlet", 0.0, flip=False)
    m = MobiusStrip(10, 5, length=4.0, half_width=0.8, dtype=C128)
    measured = np.sort(np.linalg.eigvalsh(laplacian_matrix(m)))
    assert rel_max_error(measured, a) <= 1e-10
    assert rel_max_error(measured, b) > 1e-3


@pytest.mark.parametrize("twist", [0.0, 1.1])
def test_flat_torus_spectrum_equals_2d_periodic_formula(twist: float) -> None:
    # Torus: ψ(u+L, v) = e^{iθ} ψ(u, v) and ψ periodic in v. Plane waves e^{i(q u + p v)} with
    # q = (θ + 2πn)/L, p = 2πk/(2w) diagonalise the five-point stencil with eigenvalue
    # −(4/Δu²) sin²(qΔu/2) − (4/Δv²) sin²(pΔv/2) = … − (4/Δv²) sin²(πk/nv).
    nu, nv, length, w = 9, 6, 5.0, 0.6
    lat = MobiusStrip(
        nu, nv, length=length, half_width=w, topology="torus", twist=twist, dtype=C128
    )
    du, dv = length / nu, 2 * w / nv
    q = (twist + 2 * math.pi * np.arange(nu)) / length
    lam_u = -(4 / du**2) * np.sin(q * du / 2) ** 2
    lam_v = -(4 / dv**2) * np.sin(math.pi * np.arange(nv) / nv) ** 2
    reference = np.sort((lam_u[:, None] + lam_v[None, :]).ravel())
    measured = np.sort(np.linalg.eigvalsh(laplacian_matrix(lat)))
    assert rel_max_error(measured, reference) <= 1e-10


@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
@pytest.mark.parametrize(("k", "n"), [(1, 0), (2, 3), (3, 1)])
def test_explicit_mobius_eigenfunctions(edge: str, k: int, n: int) -> None:
    # ψ = e^{iqu} f_k(v) satisfies the twisted, flipped identification iff
    # qL = θ + 2πn + π[f_k odd under v → −v]; then Δψ = λψ on the lattice.
    nu, nv, length, w, theta = 12, 6, 3.0, 1.0, 0.7
    lat = MobiusStrip(nu, nv, length=length, half_width=w, edge=edge, twist=theta, dtype=C128)
    du, dv = length / nu, 2 * w / nv
    j = np.arange(nv) + 0.5
    if edge == "dirichlet":
        f = np.sin(math.pi * k * j / nv)
        lam_v = -(4 / dv**2) * math.sin(math.pi * k / (2 * nv)) ** 2
    else:
        f = np.cos(math.pi * k * j / nv)
        lam_v = -(4 / dv**2) * math.sin(math.pi * k / (2 * nv)) ** 2
    odd = np.allclose(f[::-1], -f)
    assert odd or np.allclose(f[::-1], f)
    q = (theta + 2 * math.pi * n + (math.pi if odd else 0.0)) / length
    u = (np.arange(nu) + 0.5) * du
    psi = np.exp(1j * q * u)[:, None] * f[None, :]
    lam = lam_v - (4 / du**2) * math.sin(q * du / 2) ** 2
    out = lat.laplacian(torch.tensor(psi, dtype=C128)).numpy()
    np.testing.assert_allclose(out, lam * psi, rtol=0, atol=1e-11 * abs(lam))


# ---------------------------------------------------------------------------------------------
# seam rule, stencil entries


def expected_impulse_response(
    nu: int, nv: int, du: float, dv: float, i: int, j: int, edge: str, flip: bool, theta: float
) -> np.ndarray:
    """Δ of the unit impulse at (i, j), derived from DESIGN §3 by hand (i = 0 or nu−1)."""
    out = np.zeros((nu, nv), dtype=np.complex128)
    iu2, iv2 = 1 / du**2, 1 / dv**2
    diag = -2 * iu2 - 2 * iv2
    ghost = -1.0 if edge == "dirichlet" else 1.0
    if j == 0:
        diag += ghost * iv2
    if j == nv - 1:
        diag += ghost * iv2
    out[i, j] += diag
    if j + 1 < nv:
        out[i, j + 1] += iv2
    if j - 1 >= 0:
        out[i, j - 1] += iv2
    k = nv - 1 - j if flip else j
    if i == 0:
        # the +u neighbour of (nu−1, k) is e^{iθ} ψ(0, nv−1−k) [flip] → hit when that is (0, j)
        out[1, j] += iu2
        out[nu - 1, k] += np.exp(1j * theta) * iu2
    else:
        # the −u neighbour of (0, k) is e^{−iθ} ψ(nu−1, nv−1−k) [flip]
        out[nu - 2, j] += iu2
        out[0, k] += np.exp(-1j * theta) * iu2
    return out


@pytest.mark.parametrize("topology", ["mobius", "cylinder"])
@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
@pytest.mark.parametrize("j", [0, 1, 4])
def test_seam_rule_impulse_response(topology: str, edge: str, j: int) -> None:
    nu, nv, theta = 6, 5, 0.9
    lat = MobiusStrip(
        nu, nv, length=2.0, half_width=0.5, topology=topology, edge=edge, twist=theta, dtype=C128
    )
    for i in (0, nu - 1):
        impulse = torch.zeros(nu, nv, dtype=C128)
        impulse[i, j] = 1.0
        got = lat.laplacian(impulse).numpy()
        want = expected_impulse_response(
            nu, nv, lat.du, lat.dv, i, j, edge, topology == "mobius", theta
        )
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_seam_value_for_mobius_impulse_is_e_plus_i_theta() -> None:
    # direct statement of the rule: impulse at (0, j) → Δ at (nu−1, nv−1−j) = e^{iθ}/Δu²
    nu, nv, theta, j = 8, 4, 1.3, 1
    lat = MobiusStrip(nu, nv, twist=theta, dtype=C128)
    impulse = torch.zeros(nu, nv, dtype=C128)
    impulse[0, j] = 1.0
    value = complex(lat.laplacian(impulse)[nu - 1, nv - 1 - j])
    assert abs(value - np.exp(1j * theta) / lat.du**2) <= 1e-12 / lat.du**2
    assert complex(lat.laplacian(impulse)[nu - 1, j]) == 0  # no unflipped coupling


def test_twist_setter_is_used_by_the_next_laplacian() -> None:
    lat = MobiusStrip(6, 4, dtype=C128)
    impulse = torch.zeros(6, 4, dtype=C128)
    impulse[0, 0] = 1.0
    assert complex(lat.laplacian(impulse)[5, 3]) == pytest.approx(1 / lat.du**2, rel=1e-14)
    lat.twist = 0.5
    assert complex(lat.laplacian(impulse)[5, 3]) == pytest.approx(
        np.exp(0.5j) / lat.du**2, rel=1e-14
    )


def test_neumann_untwisted_mobius_annihilates_constants() -> None:
    for metric in ("flat", "embedded"):
        lat = MobiusStrip(12, 5, edge="neumann", metric=metric, dtype=C128)
        out = lat.laplacian(torch.full((12, 5), 2.5 + 1j, dtype=C128))
        assert float(out.abs().max()) <= 1e-12


def test_dirichlet_mobius_does_not_annihilate_constants() -> None:
    lat = MobiusStrip(12, 5, edge="dirichlet", dtype=C128)
    out = lat.laplacian(torch.ones(12, 5, dtype=C128)).numpy()
    # ghost = −ψ: (−1 − 1)/Δv² in the two edge rows, 0 inside
    np.testing.assert_allclose(out[:, 0], -2 / lat.dv**2, rtol=1e-14)
    np.testing.assert_allclose(out[:, -1], -2 / lat.dv**2, rtol=1e-14)
    assert np.abs(out[:, 1:-1]).max() <= 1e-12


def test_twisted_neumann_mobius_does_not_annihilate_constants() -> None:
    lat = MobiusStrip(12, 5, edge="neumann", twist=0.4, dtype=C128)
    out = lat.laplacian(torch.ones(12, 5, dtype=C128))
    # only the seam columns see the jump: (e^{±iθ} − 1)/Δu²
    assert abs(complex(out[-1, 2]) - (np.exp(0.4j) - 1) / lat.du**2) <= 1e-10
    assert abs(complex(out[0, 2]) - (np.exp(-0.4j) - 1) / lat.du**2) <= 1e-10
    assert float(out[1:-1].abs().max()) <= 1e-12


def test_laplacian_is_batched_over_leading_dims() -> None:
    lat = MobiusStrip(6, 4, twist=0.3, metric="embedded", dtype=C128)
    gen = torch.Generator().manual_seed(0)
    psi = torch.randn(2, 3, 6, 4, dtype=C128, generator=gen)
    out = lat.laplacian(psi)
    assert out.shape == (2, 3, 6, 4)
    torch.testing.assert_close(out[1, 2], lat.laplacian(psi[1, 2]), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# embedded metric


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
@pytest.mark.parametrize("edge", ["dirichlet", "neumann"])
def test_embedded_laplacian_is_self_adjoint_for_area_weights(topology: str, edge: str) -> None:
    lat = MobiusStrip(
        10, 5, topology=topology, edge=edge, twist=0.7, metric="embedded", aspect=2.5, dtype=C128
    )
    m = laplacian_matrix(lat)
    a = lat.area_weights().numpy().ravel()[:, None] * m
    assert np.abs(a - a.conj().T).max() <= 1e-12 * np.abs(a).max()
    # a negative semi-definite operator: W Δ ≤ 0
    eig = np.linalg.eigvalsh(0.5 * (a + a.conj().T))
    assert eig.max() <= 1e-10 * np.abs(eig).max()
    if topology != "cylinder":  # the Möbius/torus metric varies: Δ alone is not Hermitian
        assert np.abs(m - m.conj().T).max() > 1e-3 * np.abs(m).max()


def mobius_band_area(radius: float, w: float) -> float:
    # X(φ, v) = R e_R + v (cos(φ/2) e_R + sin(φ/2) e_z):
    # |X_φ|² = (R + v cos(φ/2))² + v²/4, |X_v| = 1, X_φ ⊥ X_v; area = ∫∫ |X_φ| dv dφ
    value, _ = integrate.dblquad(
        lambda v, phi: math.sqrt((radius + v * math.cos(phi / 2)) ** 2 + v * v / 4),
        0.0,
        2 * math.pi,
        -w,
        w,
        epsabs=1e-13,
        epsrel=1e-13,
    )
    return float(value)


def test_embedded_mobius_area_converges_at_second_order() -> None:
    w, aspect = 0.8, 3.0
    exact = mobius_band_area(aspect * w, w)
    errors = []
    for nu, nv in [(32, 8), (64, 16)]:
        lat = MobiusStrip(
            nu, nv, length=5.0, half_width=w, metric="embedded", aspect=aspect, dtype=C128
        )
        errors.append(abs(float(lat.area_weights().sum()) - exact) / exact)
    assert errors[1] < 1e-3
    assert errors[1] > 1e-7  # not exact: the midpoint rule in v is second order
    assert math.log2(errors[0] / errors[1]) == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("topology", ["cylinder", "torus"])
def test_embedded_cylinder_and_torus_area_is_exact(topology: str) -> None:
    # cylinder: |X_φ| = R; torus (tube circumference 2w): |X_φ| = R + r cos(πv/w), whose
    # cosine integrates to zero, also on the cell-centred grid → area 2πR·2w for both.
    w, aspect = 0.7, 3.0
    lat = MobiusStrip(
        16,
        6,
        length=5.0,
        half_width=w,
        topology=topology,
        metric="embedded",
        aspect=aspect,
        dtype=C128,
    )
    assert float(lat.area_weights().sum()) == pytest.approx(
        2 * math.pi * aspect * w * 2 * w, rel=1e-10
    )


def test_flat_area_weights_are_cell_areas() -> None:
    lat = MobiusStrip(6, 4, length=3.0, half_width=0.5, dtype=C128)
    np.testing.assert_allclose(lat.area_weights().numpy(), lat.du * lat.dv, rtol=1e-15)


def test_embedded_cylinder_equals_flat_cylinder_of_length_2_pi_r() -> None:
    # the cylinder's induced metric is flat with u rescaled by 2πR/L: its spectrum is the flat
    # cylinder spectrum for length 2πR, independently of the chart length L.
    w, aspect, nu, nv = 0.5, 4.0, 10, 4
    lat = MobiusStrip(
        nu,
        nv,
        length=3.0,
        half_width=w,
        topology="cylinder",
        edge="dirichlet",
        twist=0.6,
        metric="embedded",
        aspect=aspect,
        dtype=C128,
    )
    reference = analytic_flat_spectrum(
        nu, nv, 2 * math.pi * aspect * w, w, "dirichlet", 0.6, flip=False
    )
    measured = np.sort(np.linalg.eigvalsh(laplacian_matrix(lat)))
    assert rel_max_error(measured, reference) <= 1e-9


def test_mobius_embedding_satisfies_the_identification() -> None:
    lat = MobiusStrip(16, 5, length=4.0, half_width=0.9, metric="embedded", aspect=2.0)
    x, y, z = lat.embedding()
    pts = np.stack([x, y, z], axis=-1)
    # centreline: the midpoint of v and −v is the circle of radius aspect·w
    mid = 0.5 * (pts + pts[:, ::-1])
    phi = 2 * math.pi * lat._u_np / 4.0
    circle = np.stack([1.8 * np.cos(phi), 1.8 * np.sin(phi), 0 * phi], axis=-1)
    np.testing.assert_allclose(mid, circle[:, None, :].repeat(5, axis=1), atol=1e-12)
    # X(u, v) − C = v (cos(φ/2) e_R + sin(φ/2) e_z): half-turn per circuit
    offset = pts[:, -1] - pts[:, 0]  # = (v_{nv−1} − v_0) d
    e_r = np.stack([np.cos(phi), np.sin(phi), 0 * phi], axis=-1)
    d = np.cos(phi / 2)[:, None] * e_r + np.sin(phi / 2)[:, None] * np.array([0, 0, 1.0])
    np.testing.assert_allclose(offset, 2 * float(lat.v[-1]) * d, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (dict(topology="klein"), ["topology", "'klein'", "'mobius'", "'torus'"]),
        (dict(edge="periodic"), ["edge", "'periodic'", "'dirichlet'", "'neumann'"]),
        (dict(metric="curved"), ["metric", "'curved'", "'flat'", "'embedded'"]),
        (dict(nu=1), ["nu", "1", "≥ 2"]),
        (dict(nv=0), ["nv", "0"]),
        (dict(nu=4.0), ["nu"]),
        (dict(half_width=-1.0), ["half_width"]),
        (dict(length=float("nan")), ["length"]),
        (dict(dtype=torch.float64), ["dtype", "complex"]),
        (dict(metric="embedded", aspect=0.9), ["aspect"]),
        (dict(twist=float("inf")), ["twist"]),
    ],
)
def test_invalid_lattice_arguments_are_named(kwargs: dict, fragments: list[str]) -> None:
    args = dict(nu=8, nv=4)
    args.update(kwargs)
    with pytest.raises(LatticeError) as info:
        MobiusStrip(**args)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_wrong_field_shape_and_dtype_are_rejected() -> None:
    lat = MobiusStrip(8, 4)
    with pytest.raises(LatticeError, match=r"psi has shape \(8, 5\).*\[\.\.\., 8, 4\]"):
        lat.laplacian(torch.zeros(8, 5, dtype=torch.complex64))
    with pytest.raises(LatticeError, match=r"shape \(8,\)"):
        lat.laplacian(torch.zeros(8, dtype=torch.complex64))
    with pytest.raises(LatticeError, match=r"psi has dtype torch\.float64; a complex"):
        lat.laplacian(torch.zeros(8, 4, dtype=torch.float64))
    with pytest.raises(LatticeError, match="Tensor"):
        lat.laplacian(np.zeros((8, 4), dtype=np.complex64))  # type: ignore[arg-type]


def test_twist_setter_rejects_non_finite() -> None:
    lat = MobiusStrip(8, 4)
    with pytest.raises(LatticeError, match="twist"):
        lat.twist = float("nan")
    assert lat.twist == 0.0


def test_plaquette_shape() -> None:
    assert MobiusStrip(8, 4).plaquette_shape == (8, 3)
    assert MobiusStrip(8, 4, topology="cylinder").plaquette_shape == (8, 3)
    assert MobiusStrip(8, 4, topology="torus").plaquette_shape == (8, 4)


# ---------------------------------------------------------------------------------------------
# TokamakStack


def make_stack(**kwargs: object) -> TokamakStack:
    args: dict = dict(
        strips=3,
        nu=12,
        nv=4,
        kappa=1.4,
        delta=0.3,
        aspect=10.0,
        strip_spacing=2.0,
        coupling_range=1.5,
        metric="embedded",
        edge="neumann",
        dtype=C128,
    )
    args.update(kwargs)
    return TokamakStack(**args)


def test_stack_field_shape_and_zeros() -> None:
    stack = make_stack()
    assert stack.field_shape == (3, 12, 4)
    assert stack.zeros().shape == (3, 12, 4)
    assert stack.zeros(2).shape == (2, 3, 12, 4)
    assert stack.zeros().dtype == C128
    assert stack.area_weights().shape == (3, 12, 4)
    assert stack.coupling_weights().shape == (2, 12, 4)


def test_stack_centrelines_follow_miller_shaping() -> None:
    kappa, delta, aspect, spacing, w = 1.4, 0.3, 10.0, 2.0, 0.5
    stack = make_stack(half_width=w)
    x, y, z = stack.embedding()
    pts = np.stack([x, y, z], axis=-1)  # [S, nu, nv, 3]
    mid = 0.5 * (pts + pts[:, :, ::-1])  # midpoint of v and −v: the centreline
    phi = 2 * math.pi * stack.strip._u_np / stack.strip.length
    for s in range(3):
        r = s * spacing * w
        big_r = aspect * w + r * np.cos(phi + math.asin(delta) * np.sin(phi))
        c = np.stack([big_r * np.cos(phi), big_r * np.sin(phi), kappa * r * np.sin(phi)], -1)
        np.testing.assert_allclose(mid[s], c[:, None, :].repeat(4, axis=1), atol=1e-12)


def test_stack_coupling_weights_are_exp_of_embedded_distance() -> None:
    stack = make_stack()
    x, y, z = stack.embedding()
    pts = np.stack([x, y, z], axis=-1)
    d = np.sqrt(((pts[1:] - pts[:-1]) ** 2).sum(-1))
    np.testing.assert_allclose(stack.coupling_weights().numpy(), np.exp(-d / 1.5), rtol=1e-12)
    assert float(d.min()) > 0.5  # real distances: the weights are not trivially 1
    wider = make_stack(coupling_range=3.0)
    np.testing.assert_allclose(
        wider.coupling_weights().numpy(), np.sqrt(stack.coupling_weights().numpy()), rtol=1e-12
    )


def test_stack_coupling_conserves_sum_and_is_symmetric() -> None:
    stack = make_stack()
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 3, 12, 4, dtype=C128, generator=gen)
    b = torch.randn(2, 3, 12, 4, dtype=C128, generator=gen)
    ca, cb = stack.coupling(a), stack.coupling(b)
    assert float(ca.sum(dim=-3).abs().max()) <= 1e-12
    lhs = (a.conj() * cb).sum()
    rhs = (ca.conj() * b).sum()
    assert abs(complex(lhs - rhs)) <= 1e-12 * abs(complex(lhs))
    # explicit two-neighbour formula for the middle strip
    w = stack.coupling_weights()
    mid = w[0] * (a[:, 0] - a[:, 1]) + w[1] * (a[:, 2] - a[:, 1])
    torch.testing.assert_close(ca[:, 1], mid, rtol=0, atol=1e-12)


def test_single_strip_stack_has_no_coupling() -> None:
    stack = make_stack(strips=1)
    psi = torch.ones(1, 12, 4, dtype=C128)
    assert float(stack.coupling(psi).abs().max()) == 0.0


def test_stack_laplacian_is_per_strip() -> None:
    stack = make_stack(twist=0.4)
    gen = torch.Generator().manual_seed(4)
    psi = torch.randn(3, 12, 4, dtype=C128, generator=gen)
    out = stack.laplacian(psi)
    for s, strip in enumerate(stack.strips):
        torch.testing.assert_close(out[s], strip.laplacian(psi[s]), rtol=0, atol=1e-10)
    # strips really have different metrics (otherwise the per-strip test is vacuous)
    assert (
        float((stack.strips[0].area_weights() - stack.strips[2].area_weights()).abs().max()) > 1e-3
    )


@pytest.mark.parametrize("change", [dict(kappa=2.0), dict(delta=-0.4)])
def test_stack_shaping_changes_metric_and_weights(change: dict) -> None:
    base = make_stack()
    other = make_stack(**change)
    # strip 0 sits on the magnetic axis (r = 0): its geometry does not depend on κ, δ
    torch.testing.assert_close(base.area_weights()[0], other.area_weights()[0], rtol=1e-12, atol=0)
    area_change = (base.area_weights()[1:] - other.area_weights()[1:]).abs().max()
    assert float(area_change) > 1e-4
    weight_change = (base.coupling_weights() - other.coupling_weights()).abs().max()
    assert float(weight_change) > 1e-4


def test_stack_area_weights_match_each_strip() -> None:
    stack = make_stack()
    for s, strip in enumerate(stack.strips):
        torch.testing.assert_close(stack.area_weights()[s], strip.area_weights())


def test_stack_rejects_too_small_aspect() -> None:
    with pytest.raises(LatticeError, match="aspect"):
        TokamakStack(3, 8, 4, aspect=4.0, strip_spacing=2.0)
    TokamakStack(3, 8, 4, aspect=5.5, strip_spacing=2.0)  # r_max + w = 5w < R0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(kappa=0.2), "kappa"),
        (dict(delta=1.0), "delta"),
        (dict(coupling_range=0.0), "coupling_range"),
        (dict(strips=0), "strips"),
    ],
)
def test_stack_rejects_invalid_shaping(kwargs: dict, name: str) -> None:
    args: dict = dict(strips=2, nu=8, nv=4)
    args.update(kwargs)
    with pytest.raises(LatticeError, match=name):
        TokamakStack(**args)


def test_stack_field_checks() -> None:
    stack = make_stack()
    with pytest.raises(LatticeError, match=r"\[\.\.\., 3, 12, 4\]"):
        stack.laplacian(torch.zeros(2, 12, 4, dtype=C128))
    with pytest.raises(LatticeError, match="complex"):
        stack.coupling(torch.zeros(3, 12, 4))


def test_stack_twist_applies_to_every_strip() -> None:
    stack = make_stack()
    stack.twist = 0.8
    assert [s.twist for s in stack.strips] == [0.8, 0.8, 0.8]
    impulse = torch.zeros(3, 12, 4, dtype=C128)
    impulse[2, 0, 1] = 1.0
    seam = complex(stack.laplacian(impulse)[2, 11, 2])
    want = complex(stack.strips[2].laplacian(impulse[2])[11, 2])
    assert abs(seam - want) <= 1e-12 * abs(want)
    assert abs(np.angle(want) - 0.8) <= 1e-12
