"""Tests of the fixed vortex detector (plaquette windings), sub-cell detection and imprinting.

Independent references: the null-model fraction 1/3, winding sums computed here in NumPy along
block boundaries, the boundary-parity identity Σq ≡ W − θ/π (mod 2) of DESIGN §3 with W from
``references.boundary_winding``, and the known positions/charges of imprinted vortices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hhml.core.mobius import MobiusStrip, TokamakStack
from hhml.core.resonance import (
    IID_PHASE_VORTEX_FRACTION,
    detect_vortices,
    imprint_pair,
    imprint_vortex,
    vortex_density,
    winding_numbers,
)
from hhml.errors import LatticeError
from hhml.validation.references import boundary_winding

C128 = torch.complex128


def gaussian_field(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def smooth_background(lat: MobiusStrip) -> torch.Tensor:
    """Vortex-free field obeying the twisted identification: e^{iθu/L}."""
    uu, _ = lat.coordinates()
    return torch.polar(torch.ones_like(uu), lat.twist * uu / lat.length).to(lat.dtype)


def nonzero(charges: torch.Tensor) -> list[tuple[tuple[int, ...], int]]:
    return [(tuple(ix.tolist()), int(charges[tuple(ix)])) for ix in torch.nonzero(charges)]


# ---------------------------------------------------------------------------------------------
# winding numbers: shapes and simple fields


def test_winding_shapes_and_dtype() -> None:
    lat = MobiusStrip(8, 5, dtype=C128)
    w = winding_numbers(torch.ones(2, 3, 8, 5, dtype=C128), lat)
    assert w.shape == (2, 3, 8, 4) and w.dtype == torch.int64
    torus = MobiusStrip(8, 5, topology="torus", dtype=C128)
    assert winding_numbers(torch.ones(8, 5, dtype=C128), torus).shape == (8, 5)
    stack = TokamakStack(2, 8, 5)
    assert winding_numbers(stack.zeros(3), stack).shape == (3, 2, 8, 4)


def test_zero_and_uniform_fields_have_no_vortices() -> None:
    for topology in ("mobius", "cylinder", "torus"):
        lat = MobiusStrip(8, 5, topology=topology, dtype=C128)
        assert int(winding_numbers(torch.zeros(8, 5, dtype=C128), lat).abs().sum()) == 0
        assert int(winding_numbers(torch.full((8, 5), 2 - 1j, dtype=C128), lat).abs().sum()) == 0


def test_winding_rejects_wrong_shape() -> None:
    with pytest.raises(LatticeError, match="shape"):
        winding_numbers(torch.zeros(8, 4, dtype=C128), MobiusStrip(8, 5))


@pytest.mark.parametrize("topology", ["mobius", "cylinder"])
@pytest.mark.parametrize("twist", [0.0, 0.9])
@pytest.mark.parametrize("charge", [1, -1])
@pytest.mark.parametrize("i", [5, 0, 15])  # interior, beside the seam, the seam plaquette
def test_single_imprinted_vortex_is_one_unit_winding(
    topology: str, twist: float, charge: int, i: int
) -> None:
    lat = MobiusStrip(16, 8, topology=topology, twist=twist, dtype=C128)
    j = 3
    position = (float(lat.u[i]) + 0.2 * lat.du, float(lat.v[j]) + 0.3 * lat.dv)
    psi = imprint_vortex(smooth_background(lat), lat, position, charge, core_radius=0.3)
    assert nonzero(winding_numbers(psi, lat)) == [((i, j), charge)]


def test_single_vortex_on_a_stack_strip() -> None:
    stack = TokamakStack(2, 16, 8, dtype=C128)
    strip = stack.strips[1]
    psi = stack.zeros() + 1
    psi[1] = imprint_vortex(psi[1], strip, (float(strip.u[4]) + 0.01, float(strip.v[2]) + 0.01))
    assert nonzero(winding_numbers(psi, stack)) == [((1, 4, 2), 1)]


def test_iid_random_phases_give_one_third() -> None:
    fields, nu, nv = 40, 32, 12
    lat = MobiusStrip(nu, nv, dtype=C128)
    rng = np.random.default_rng(2024)
    phases = rng.uniform(0, 2 * math.pi, (fields, nu, nv))
    psi = torch.tensor(np.exp(1j * phases), dtype=C128)
    charges = winding_numbers(psi, lat)
    assert set(charges.unique().tolist()) <= {-1, 0, 1}
    per_field = vortex_density(charges).numpy()
    assert per_field.shape == (fields,)
    np.testing.assert_allclose(per_field, (charges != 0).double().mean(dim=(-2, -1)).numpy())
    mean = per_field.mean()
    se = per_field.std(ddof=1) / math.sqrt(fields)
    assert abs(IID_PHASE_VORTEX_FRACTION - 1 / 3) < 1e-15
    assert abs(mean - 1 / 3) < 4 * se
    assert se < 0.01  # the test has resolving power
    # and it is not a smooth-field artefact: a smooth field has none
    assert vortex_density(winding_numbers(smooth_background(lat), lat)).item() == 0.0


# ---------------------------------------------------------------------------------------------
# hypothesis properties

topologies = st.sampled_from(["mobius", "cylinder", "torus"])
twists = st.floats(min_value=-2 * math.pi, max_value=2 * math.pi, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(
    nu=st.integers(2, 9),
    nv=st.integers(2, 6),
    topology=topologies,
    twist=twists,
    chi=st.floats(min_value=-20.0, max_value=20.0, allow_nan=False),
    seed=st.integers(0, 2**31),
)
def test_global_phase_and_positive_amplitude_invariance(
    nu: int, nv: int, topology: str, twist: float, chi: float, seed: int
) -> None:
    lat = MobiusStrip(nu, nv, topology=topology, twist=twist, dtype=C128)
    z = gaussian_field((nu, nv), seed)
    psi = torch.tensor(z, dtype=C128)
    w = winding_numbers(psi, lat)
    rotated = torch.tensor(np.exp(1j * chi) * z, dtype=C128)
    assert torch.equal(winding_numbers(rotated, lat), w)
    rho = np.random.default_rng(seed + 1).uniform(0.1, 10.0, (nu, nv))
    assert torch.equal(winding_numbers(torch.tensor(rho * z, dtype=C128), lat), w)


def block_boundary_winding(z: np.ndarray, i0: int, i1: int, j0: int, j1: int) -> float:
    """Σ wrapped increments / 2π around the block of plaquettes [i0, i1] × [j0, j1]
    (node corners i0..i1+1, j0..j1+1), counter-clockwise in (u, v)."""
    path = (
        [(i, j0) for i in range(i0, i1 + 2)]
        + [(i1 + 1, j) for j in range(j0 + 1, j1 + 2)]
        + [(i, j1 + 1) for i in range(i1, i0 - 1, -1)]
        + [(i0, j) for j in range(j1, j0 - 1, -1)]
    )
    values = np.array([z[p] for p in path])
    return float(np.angle(values[1:] * values[:-1].conj()).sum() / (2 * math.pi))


@settings(max_examples=50, deadline=None)
@given(
    nu=st.integers(3, 10),
    nv=st.integers(2, 7),
    topology=topologies,
    twist=twists,
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_plaquette_charges_add_up_to_the_block_winding(
    nu: int, nv: int, topology: str, twist: float, seed: int, data: st.DataObject
) -> None:
    lat = MobiusStrip(nu, nv, topology=topology, twist=twist, dtype=C128)
    z = gaussian_field((nu, nv), seed)
    charges = winding_numbers(torch.tensor(z, dtype=C128), lat).numpy()
    # a block of plaquettes that does not touch the seam (plaquette i = nu−1)
    i0 = data.draw(st.integers(0, nu - 2))
    i1 = data.draw(st.integers(i0, nu - 2))
    j0 = data.draw(st.integers(0, nv - 2))
    j1 = data.draw(st.integers(j0, nv - 2))
    total = int(charges[i0 : i1 + 1, j0 : j1 + 1].sum())
    assert block_boundary_winding(z, i0, i1, j0, j1) == pytest.approx(total, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    nu=st.integers(2, 10),
    nv=st.integers(2, 7),
    twist=twists,
    seed=st.integers(0, 2**31),
    smooth=st.booleans(),
)
def test_boundary_parity_identity_on_the_mobius_band(
    nu: int, nv: int, twist: float, seed: int, smooth: bool
) -> None:
    lat = MobiusStrip(nu, nv, twist=twist, dtype=C128)
    if smooth:  # vortices imprinted on a smooth twisted background
        rng = np.random.default_rng(seed)
        psi = smooth_background(lat)
        for _ in range(int(rng.integers(0, 4))):
            position = (float(rng.uniform(0, lat.length)), float(rng.uniform(-0.8, 0.8)))
            psi = imprint_vortex(psi, lat, position, int(rng.choice([-1, 1])), 0.3)
        z = psi.numpy()
    else:
        z = gaussian_field((nu, nv), seed)
    total = int(winding_numbers(torch.tensor(z, dtype=C128), lat).sum())
    w = boundary_winding(z, twist)
    residue = (total - w + twist / math.pi) / 2
    assert abs(residue - round(residue)) < 1e-9


def test_parity_identity_is_not_vacuous() -> None:
    # one vortex imprinted: Σq changes by one, so W − θ/π must change parity too
    lat = MobiusStrip(32, 8, twist=0.5, dtype=C128)
    base = smooth_background(lat)
    w0 = boundary_winding(base.numpy(), 0.5) - 0.5 / math.pi
    psi = imprint_vortex(base, lat, (1.0, 0.1), 1, 0.3)
    w1 = boundary_winding(psi.numpy(), 0.5) - 0.5 / math.pi
    assert int(winding_numbers(psi, lat).sum()) == 1
    assert round(w0) % 2 == 0 and round(w1) % 2 == 1


# ---------------------------------------------------------------------------------------------
# detect_vortices


@pytest.mark.parametrize("charge", [1, -1])
def test_detected_position_is_the_imprinted_core(charge: int) -> None:
    lat = MobiusStrip(32, 12, twist=0.4, dtype=C128)
    i, j = 10, 4
    u0, v0 = float(lat.u[i]) + 0.2 * lat.du, float(lat.v[j]) + 0.3 * lat.dv
    psi = imprint_vortex(smooth_background(lat), lat, (u0, v0), charge, core_radius=3 * lat.du)
    found = detect_vortices(psi, lat)
    assert len(found) == 1
    assert found.index.tolist() == [[i, j]]
    assert found.charge.tolist() == [charge]
    du, dv = found.position[0].tolist()
    assert abs(du - u0) < 0.1 * lat.du and abs(dv - v0) < 0.1 * lat.dv
    # depth = 1 − mean |corner| / rms|ψ|, computed here from the field itself
    a = psi.abs().numpy()
    corners = [a[i, j], a[i + 1, j], a[i + 1, j + 1], a[i, j + 1]]
    want = 1 - np.mean(corners) / math.sqrt((a**2).mean())
    assert float(found.depth[0]) == pytest.approx(want, abs=1e-12)
    assert 0.7 < float(found.depth[0]) <= 1.0


def test_phase_only_defect_has_zero_depth() -> None:
    lat = MobiusStrip(32, 12, dtype=C128)
    psi = imprint_vortex(torch.ones(32, 12, dtype=C128), lat, (2.0, 0.1), 1, core_radius=0.0)
    found = detect_vortices(psi, lat)
    assert len(found) == 1
    assert float(found.depth[0]) == pytest.approx(0.0, abs=1e-12)


def test_depth_is_clamped_to_unit_interval() -> None:
    lat = MobiusStrip(16, 8, dtype=C128)
    z = gaussian_field((16, 8), 5)
    found = detect_vortices(torch.tensor(z, dtype=C128), lat)
    assert len(found) > 5
    assert float(found.depth.min()) >= 0.0 and float(found.depth.max()) <= 1.0


def test_detect_vortices_is_batched() -> None:
    lat = MobiusStrip(24, 10, dtype=C128)
    spots = [(float(lat.u[3]) + 0.05, float(lat.v[2]) + 0.05), (float(lat.u[17]) + 0.1, 0.05)]
    fields = [imprint_vortex(torch.ones(24, 10, dtype=C128), lat, s, 1, 0.4) for s in spots]
    fields[1] = imprint_vortex(fields[1], lat, (float(lat.u[6]) + 0.1, 0.33), -1, 0.4)
    found = detect_vortices(torch.stack(fields), lat)
    assert found.index.shape == (3, 3)  # columns (batch, i, j)
    rows = sorted(map(tuple, found.index.tolist()))
    j_mid = int(torch.searchsorted(lat.v, torch.tensor(0.05, dtype=torch.float64))) - 1
    j_33 = int(torch.searchsorted(lat.v, torch.tensor(0.33, dtype=torch.float64))) - 1
    assert rows == sorted([(0, 3, 2), (1, 17, j_mid), (1, 6, j_33)])
    by_row = {
        tuple(ix): q for ix, q in zip(found.index.tolist(), found.charge.tolist(), strict=True)
    }
    assert by_row[(1, 6, j_33)] == -1 and by_row[(0, 3, 2)] == 1
    assert found.position.shape == (3, 2) and found.depth.shape == (3,)


def test_batched_depth_equals_unbatched_depth() -> None:
    lat = MobiusStrip(24, 10, dtype=C128)
    a = imprint_vortex(torch.ones(24, 10, dtype=C128), lat, (2.0, 0.05), 1, 0.2)
    b = 10 * imprint_vortex(torch.ones(24, 10, dtype=C128), lat, (4.0, 0.05), 1, 0.2)
    alone = [float(detect_vortices(f, lat).depth[0]) for f in (a, b)]
    together = detect_vortices(torch.stack([a, b]), lat)
    assert together.index[:, 0].tolist() == [0, 1]
    np.testing.assert_allclose(together.depth.numpy(), alone, atol=1e-12)


def test_cylinder_core_just_past_the_seam_keeps_its_charge() -> None:
    lat = MobiusStrip(24, 10, topology="cylinder", twist=0.5, dtype=C128)
    u0, v0 = 0.2 * lat.du, float(lat.v[6]) + 0.3 * lat.dv
    psi = imprint_vortex(smooth_background(lat), lat, (u0, v0), -1, core_radius=0.6)
    assert nonzero(winding_numbers(psi, lat)) == [((23, 6), -1)]  # no flip: same row, same q
    found = detect_vortices(psi, lat)
    assert found.charge.tolist() == [-1]
    np.testing.assert_allclose(found.position[0].numpy(), [u0, v0], atol=0.1 * lat.dv)


def test_core_just_past_the_seam_is_reported_in_chart_coordinates() -> None:
    # a core at u0 < u_0 lies, seen from the last column, at (L + u0, −v0) in the seam
    # plaquette; the plaquette's winding is −q there (orientation flip), the reported
    # position is mapped back to (u0, v0) with charge q.
    lat = MobiusStrip(24, 10, dtype=C128)
    u0, v0, q = 0.2 * lat.du, float(lat.v[6]) + 0.3 * lat.dv, 1
    psi = imprint_vortex(torch.ones(24, 10, dtype=C128), lat, (u0, v0), q, core_radius=0.6)
    charges = winding_numbers(psi, lat)
    j_seam = 10 - 1 - 6 - 1  # −v0 lies between v_{nv−1−7} and v_{nv−1−6}
    assert nonzero(charges) == [((23, j_seam), -q)]
    found = detect_vortices(psi, lat)
    assert found.charge.tolist() == [q]
    assert abs(float(found.position[0, 0]) - u0) < 0.1 * lat.du
    assert abs(float(found.position[0, 1]) - v0) < 0.1 * lat.dv


# ---------------------------------------------------------------------------------------------
# imprinting


def test_imprint_vortex_on_torus_points_to_imprint_pair() -> None:
    lat = MobiusStrip(16, 8, topology="torus", dtype=C128)
    with pytest.raises(LatticeError, match="imprint_pair"):
        imprint_vortex(torch.ones(16, 8, dtype=C128), lat, (1.0, 0.0))


def test_imprint_pair_on_torus_gives_two_opposite_charges() -> None:
    lat = MobiusStrip(24, 12, topology="torus", twist=0.3, dtype=C128)
    u0, v0, sep = 3.0, 0.2, 1.0
    psi = imprint_pair(smooth_background(lat), lat, (u0, v0), sep, 1, core_radius=0.2)
    charges = winding_numbers(psi, lat)
    assert int((charges != 0).sum()) == 2  # nothing spurious at the v = ±w wrap or the seam
    found = detect_vortices(psi, lat)
    order = torch.argsort(found.position[:, 0])
    assert found.charge[order].tolist() == [1, -1]
    np.testing.assert_allclose(
        found.position[order].numpy(), [[u0 - sep / 2, v0], [u0 + sep / 2, v0]], atol=0.1 * lat.du
    )


def test_imprint_pair_across_the_mobius_seam() -> None:
    lat = MobiusStrip(32, 12, dtype=C128)
    u0, v0, sep = 0.1, 0.3, 0.6
    psi = imprint_pair(torch.ones(32, 12, dtype=C128), lat, (u0, v0), sep, 1, core_radius=0.2)
    assert int((winding_numbers(psi, lat) != 0).sum()) == 2
    found = detect_vortices(psi, lat)
    pos = found.position.numpy()
    charges = found.charge.tolist()
    far = int(np.argmax(pos[:, 0]))  # the member wrapped through the seam
    near = 1 - far
    # the −sep/2 member crossed u = 0: it sits at (L + u0 − sep/2, −v0) in the chart
    np.testing.assert_allclose(pos[far], [lat.length + u0 - sep / 2, -v0], atol=0.1 * lat.du)
    np.testing.assert_allclose(pos[near], [u0 + sep / 2, v0], atol=0.1 * lat.du)
    # chart charges are equal; oriented through the seam (one flip) they are opposite
    assert charges[far] == charges[near]
    assert -charges[far] + charges[near] == 0
    assert charges[near] == -1  # the +sep/2 member is the antivortex


def test_imprint_pair_across_the_cylinder_seam_keeps_chart_charges_opposite() -> None:
    lat = MobiusStrip(32, 12, topology="cylinder", dtype=C128)
    psi = imprint_pair(torch.ones(32, 12, dtype=C128), lat, (0.1, 0.3), 0.6, 1, core_radius=0.2)
    found = detect_vortices(psi, lat)
    far = int(np.argmax(found.position[:, 0].numpy()))
    np.testing.assert_allclose(
        found.position[far].numpy(), [lat.length - 0.2, 0.3], atol=0.1 * lat.du
    )
    assert sorted(found.charge.tolist()) == [-1, 1]
    assert int(found.charge[far]) == 1


def test_imprint_respects_the_twisted_identification() -> None:
    # imprinting must not change ψ(u+L, v) = e^{iθ}ψ(u, −v): the factor is untwisted, so the
    # seam plaquettes far from the core carry no winding, and |ψ| is continuous there
    lat = MobiusStrip(32, 8, twist=1.2, dtype=C128)
    psi = imprint_vortex(smooth_background(lat), lat, (3.0, 0.2), 1, core_radius=0.3)
    charges = winding_numbers(psi, lat)
    assert int(charges[-1].abs().sum()) == 0 and int(charges.abs().sum()) == 1
    across = psi[-1] * 0 + np.exp(1.2j) * psi[0].flip(0)  # +u neighbour of the last column
    step = (across / psi[-1]).angle().abs().max()
    inside = (psi[1] / psi[0]).angle().abs().max()
    assert float(step) < 3 * float(inside)


def test_imprint_rejects_bad_arguments() -> None:
    lat = MobiusStrip(16, 8, dtype=C128)
    psi = torch.ones(16, 8, dtype=C128)
    with pytest.raises(LatticeError, match="position"):
        imprint_vortex(psi, lat, (lat.length + 0.1, 0.0))
    with pytest.raises(LatticeError, match="position"):
        imprint_vortex(psi, lat, (1.0, 1.0))
    with pytest.raises(LatticeError, match="charge"):
        imprint_vortex(psi, lat, (1.0, 0.0), charge=1.5)  # type: ignore[arg-type]
    with pytest.raises(LatticeError, match="shape"):
        imprint_vortex(torch.ones(16, 7, dtype=C128), lat, (1.0, 0.0))


def test_double_charge_imprint_has_total_charge_two() -> None:
    lat = MobiusStrip(48, 16, dtype=C128)
    psi = imprint_vortex(torch.ones(48, 16, dtype=C128), lat, (2.0, 0.05), 2, core_radius=0.3)
    found = detect_vortices(psi, lat)
    assert int(found.charge.sum()) == 2
    d = (found.position - torch.tensor([2.0, 0.05], dtype=torch.float64)).norm(dim=1)
    assert float(d.max()) < 2 * lat.du


@pytest.mark.parametrize("charge", [1, -1])
def test_torus_pair_imprint_has_exactly_two_windings_for_either_charge(charge: int) -> None:
    # regression: the torus gauge ramp must scale with the charge (it did not for −1)
    lat = MobiusStrip(24, 6, topology="torus", dtype=torch.complex128)
    rng = np.random.default_rng(0)
    for _ in range(60):
        pos = (float(rng.uniform(0, lat.length)), float(rng.uniform(-0.7, 0.7)))
        psi = imprint_pair(torch.ones(24, 6, dtype=torch.complex128), lat, pos, 0.6, charge, 0.1)
        q = winding_numbers(psi, lat)
        assert int((q != 0).sum()) == 2 and int(q.sum()) == 0
