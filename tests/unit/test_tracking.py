"""Tests of vortex tracking on the Möbius band and its cylinder/torus controls."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hhml.core.resonance.tracking import (
    TOPOLOGIES,
    Topology,
    TrackEvent,
    VortexTracker,
    band_displacement,
    band_distance,
    wrap_to_chart,
)
from hhml.errors import ConfigError, HHmLError, LatticeError

L = 10.0
W = 1.0


def kinds(events: list[TrackEvent], kind: str) -> list[TrackEvent]:
    return [event for event in events if event.kind == kind]


def run(tracker: VortexTracker, frames: list[tuple[list[list[float]], list[int]]]) -> None:
    """Feed frames at t = 0, 1, 2, ..."""
    for t, (positions, charges) in enumerate(frames):
        tracker.update(np.asarray(positions, dtype=float).reshape(-1, 2), charges, float(t))


# ---------------------------------------------------------------------------------------------
# band geometry: exact values
# ---------------------------------------------------------------------------------------------


def test_mobius_distance_through_seam_reflects_v() -> None:
    d = band_displacement([0.1, 0.5], [L - 0.1, -0.5], length=L, half_width=W, topology="mobius")
    assert float(d.distance) == pytest.approx(0.2, abs=1e-12)
    assert bool(d.crosses_seam)
    np.testing.assert_allclose(d.displacement, [-0.2, 0.0], atol=1e-12)


def test_cylinder_distance_through_seam_keeps_v() -> None:
    d = band_displacement([0.1, 0.5], [L - 0.1, -0.5], length=L, half_width=W, topology="cylinder")
    assert float(d.distance) == pytest.approx(math.sqrt(0.2**2 + 1.0**2), abs=1e-12)
    assert bool(d.crosses_seam)
    np.testing.assert_allclose(d.displacement, [-0.2, -1.0], atol=1e-12)


def test_torus_wraps_v_but_that_is_not_a_seam_crossing() -> None:
    d = band_displacement([3.0, 0.9], [3.0, -0.9], length=L, half_width=W, topology="torus")
    assert float(d.distance) == pytest.approx(0.2, abs=1e-12)
    assert not bool(d.crosses_seam)
    # The same points on the bands with edges are 1.8 apart.
    for topology in ("mobius", "cylinder"):
        assert float(
            band_distance([3.0, 0.9], [3.0, -0.9], length=L, half_width=W, topology=topology)
        ) == pytest.approx(1.8)


def test_direct_path_when_shorter_than_seam_path() -> None:
    d = band_displacement([2.0, 0.5], [2.5, -0.5], length=L, half_width=W, topology="mobius")
    assert float(d.distance) == pytest.approx(math.hypot(0.5, 1.0))
    assert not bool(d.crosses_seam)


def test_lifted_images_are_the_same_point() -> None:
    p = np.array([0.3, 0.2])
    one_turn = [0.3 + L, -0.2]  # (u + L, v) is (u, -v) on the Möbius band
    two_turns = [0.3 + 2 * L, 0.2]
    d1 = band_displacement(p, one_turn, length=L, half_width=W, topology="mobius")
    d2 = band_displacement(p, two_turns, length=L, half_width=W, topology="mobius")
    assert float(d1.distance) == pytest.approx(0.0, abs=1e-12)
    assert bool(d1.crosses_seam)  # odd number of turns: orientation reversed
    assert float(d2.distance) == pytest.approx(0.0, abs=1e-12)
    assert not bool(d2.crosses_seam)
    # On the cylinder (u + L, v) is the same point, (u + L, -v) is not.
    assert float(
        band_distance(p, [0.3 + L, 0.2], length=L, half_width=W, topology="cylinder")
    ) == pytest.approx(0.0, abs=1e-12)
    assert float(
        band_distance(p, one_turn, length=L, half_width=W, topology="cylinder")
    ) == pytest.approx(0.4)


def test_band_distance_broadcasts_and_accepts_tensors() -> None:
    p = np.array([[1.0, 0.0], [9.9, 0.5], [5.0, -0.5]])
    q = np.array([[1.5, 0.0], [0.1, -0.5]])
    d = band_distance(p[:, None, :], q[None, :, :], length=L, half_width=W, topology="mobius")
    assert d.shape == (3, 2)
    assert d[0, 0] == pytest.approx(0.5)
    assert d[1, 1] == pytest.approx(0.2)
    dt = band_distance(
        torch.tensor(p)[:, None, :],
        torch.tensor(q)[None],
        length=L,
        half_width=W,
        topology="mobius",
    )
    np.testing.assert_array_equal(d, dt)


def test_wrap_to_chart() -> None:
    pts = [[L + 0.3, 0.2], [-0.1, 0.2], [2 * L + 1.0, 0.4], [4.0, 0.5]]
    wrapped, flipped = wrap_to_chart(pts, length=L, half_width=W, topology="mobius")
    np.testing.assert_allclose(wrapped, [[0.3, -0.2], [L - 0.1, -0.2], [1.0, 0.4], [4.0, 0.5]])
    np.testing.assert_array_equal(flipped, [True, True, False, False])
    wrapped, flipped = wrap_to_chart(pts, length=L, half_width=W, topology="cylinder")
    np.testing.assert_allclose(wrapped[:, 1], [0.2, 0.2, 0.4, 0.5])
    assert not flipped.any()
    wrapped, _ = wrap_to_chart([[1.0, 1.5]], length=L, half_width=W, topology="torus")
    np.testing.assert_allclose(wrapped, [[1.0, -0.5]])
    # A value a rounding step below 0 must not wrap to exactly L.
    wrapped, _ = wrap_to_chart([[-1e-300, 0.0]], length=L, half_width=W, topology="mobius")
    assert 0.0 <= wrapped[0, 0] < L


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"length": -1.0, "half_width": W, "topology": "mobius"}, "length"),
        ({"length": L, "half_width": float("nan"), "topology": "mobius"}, "half_width"),
        ({"length": L, "half_width": W, "topology": "klein"}, "topology"),
    ],
)
def test_band_distance_rejects_bad_geometry(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(LatticeError, match=match):
        band_distance([0.0, 0.0], [1.0, 0.0], **kwargs)  # type: ignore[arg-type]


def test_band_distance_rejects_bad_points() -> None:
    def mobius(p: object, q: object) -> np.ndarray:
        return band_distance(p, q, length=L, half_width=W, topology="mobius")  # type: ignore[arg-type]

    with pytest.raises(LatticeError, match="p has"):
        mobius([0.0, 1.5], [1.0, 0.0])
    with pytest.raises(LatticeError, match="q contains non-finite"):
        mobius([0.0, 0.0], [np.nan, 0.0])
    with pytest.raises(LatticeError, match=r"shape \[\.\.\., 2\]"):
        mobius([0.0, 0.0, 0.0], [1.0, 0.0])
    with pytest.raises(LatticeError, match="broadcast"):
        mobius(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(LatticeError, match="real numbers"):
        mobius([1j, 0.0], [1.0, 0.0])
    # |v| > w is fine on the torus, where v is periodic.
    band_distance([0.0, 1.5], [1.0, 0.0], length=L, half_width=W, topology="torus")


# ---------------------------------------------------------------------------------------------
# band geometry: properties
# ---------------------------------------------------------------------------------------------


@st.composite
def band_and_points(draw: st.DrawFn, n: int) -> tuple[float, float, Topology, list[np.ndarray]]:
    length = draw(st.floats(0.5, 20.0))
    half_width = draw(st.floats(0.1, 5.0))
    topology = draw(st.sampled_from(TOPOLOGIES))
    points = []
    for _ in range(n):
        u = draw(st.floats(0.0, length, exclude_max=True))
        v = draw(st.floats(-half_width, half_width, exclude_max=(topology == "torus")))
        points.append(np.array([u, v]))
    return length, half_width, topology, points


def brute_force_distance(
    p: np.ndarray, q: np.ndarray, length: float, half_width: float, topology: str
) -> float:
    """Minimum over an explicit list of images of q."""
    best = math.inf
    v_shifts = (-1, 0, 1) if topology == "torus" else (0,)
    for k, m in itertools.product(range(-3, 4), v_shifts):
        sign = (-1) ** k if topology == "mobius" else 1
        image = (q[0] + k * length, sign * q[1] + 2 * m * half_width)
        best = min(best, math.hypot(image[0] - p[0], image[1] - p[1]))
    return best


@settings(max_examples=100, deadline=None)
@given(band_and_points(3))
def test_band_distance_is_a_metric(case: tuple[float, float, Topology, list[np.ndarray]]) -> None:
    length, half_width, topology, (p, q, r) = case
    tol = 1e-9 * (length + half_width)
    sign = -1.0 if topology == "mobius" else 1.0
    image_ahead = np.array([p[0] + length, sign * p[1]])
    image_behind = np.array([p[0] - length, sign * p[1]])
    # One vectorised call for all the pairs needed below.
    pairs = [(p, q), (q, p), (p, p), (p, r), (q, r), (p, image_ahead), (p, image_behind)]
    d_pq, d_qp, d_pp, d_pr, d_qr, d_ahead, d_behind = band_distance(
        np.array([a for a, _ in pairs]),
        np.array([b for _, b in pairs]),
        length=length,
        half_width=half_width,
        topology=topology,
    )
    assert d_pq >= 0.0
    assert d_pq == pytest.approx(d_qp, abs=tol)
    assert d_pp == 0.0
    assert d_pr <= d_pq + d_qr + tol
    # Zero exactly for identified points: distinct chart points are apart, images are not.
    if np.max(np.abs(p - q)) > 1e-6:
        assert d_pq > 0.0
    assert d_ahead == pytest.approx(0.0, abs=tol)
    assert d_behind == pytest.approx(0.0, abs=tol)
    # And it is the minimum over the images of q.
    assert d_pq == pytest.approx(brute_force_distance(p, q, length, half_width, topology), abs=tol)


@settings(max_examples=60, deadline=None)
@given(band_and_points(2))
def test_displacement_lands_on_an_image(
    case: tuple[float, float, Topology, list[np.ndarray]],
) -> None:
    length, half_width, topology, (p, q) = case
    res = band_displacement(p, q, length=length, half_width=half_width, topology=topology)
    assert float(np.hypot(*res.displacement)) == pytest.approx(float(res.distance))
    landed, _ = wrap_to_chart(
        p + res.displacement, length=length, half_width=half_width, topology=topology
    )
    assert float(
        band_distance(landed, q, length=length, half_width=half_width, topology=topology)
    ) == pytest.approx(0.0, abs=1e-9 * (length + half_width))


# ---------------------------------------------------------------------------------------------
# tracker: lifetimes and linking
# ---------------------------------------------------------------------------------------------


def test_steady_vortex_is_one_track_with_lifetime_equal_to_elapsed_time() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    times = np.arange(0.0, 3.01, 0.5)
    for k, t in enumerate(times):
        ids = tracker.update([[1.0 + 0.2 * k, 0.3]], [1], t)
        assert ids.tolist() == [0]
    assert len(tracker.tracks) == 1
    track = tracker.tracks[0]
    assert track.alive
    assert len(track.history) == len(times)
    assert tracker.lifetimes().size == 0  # nothing has ended yet
    np.testing.assert_allclose(tracker.lifetimes(include_alive=True), [3.0])
    tracker.update(np.zeros((0, 2)), [], 3.5)
    assert not track.alive and track.death_time == 3.5
    np.testing.assert_allclose(tracker.lifetimes(), [3.5])
    assert tracker.mean_lifetime() == pytest.approx(3.5)
    assert len(kinds(tracker.events, "death")) == 1
    assert tracker.seam_crossings == 0


def test_mobius_seam_crossing_flips_chart_charge_and_keeps_track() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    run(
        tracker,
        [
            ([[9.80, 0.3]], [1]),
            ([[9.95, 0.3]], [1]),
            ([[0.10, -0.3]], [-1]),  # across the seam: v -> -v, chart charge -> -q
            ([[0.25, -0.3]], [-1]),
        ],
    )
    assert len(tracker.tracks) == 1
    track = tracker.tracks[0]
    assert track.seam_crossings == 1 and tracker.seam_crossings == 1
    assert track.birth_charge == 1 and track.charge == -1
    (crossing,) = kinds(tracker.events, "seam_crossing")
    assert crossing.time == 2.0 and crossing.charges == (1, -1)
    # The path meets u = L at v = 0.3, which is the chart point (0, -0.3).
    assert crossing.position == pytest.approx((0.0, -0.3))
    assert not kinds(tracker.events, "birth") and not kinds(tracker.events, "death")


def test_mobius_seam_crossing_in_the_other_direction() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    run(tracker, [([[0.1, 0.6]], [-1]), ([[9.9, -0.6]], [1])])
    assert len(tracker.tracks) == 1
    assert tracker.seam_crossings == 1
    (crossing,) = kinds(tracker.events, "seam_crossing")
    assert crossing.position == pytest.approx((0.0, 0.6))


def test_mobius_seam_crossing_without_charge_flip_is_not_linked() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    run(tracker, [([[9.95, 0.3]], [1]), ([[0.10, -0.3]], [1])])
    assert len(tracker.tracks) == 2
    assert tracker.seam_crossings == 0
    assert len(kinds(tracker.events, "death")) == 1
    assert len(kinds(tracker.events, "birth")) == 1
    assert not tracker.tracks[0].alive and tracker.tracks[1].alive


def test_cylinder_seam_crossing_keeps_charge_and_is_counted() -> None:
    # Documented choice: crossings of u = 0 are counted on every topology, so the Möbius band
    # and its controls are measured alike; only the Möbius band flips the charge.
    for topology in ("cylinder", "torus"):
        tracker = VortexTracker(L, W, topology, max_distance=0.5)
        run(tracker, [([[9.80, 0.3]], [1]), ([[9.95, 0.3]], [1]), ([[0.10, 0.3]], [1])])
        assert len(tracker.tracks) == 1, topology
        assert tracker.seam_crossings == 1
        (crossing,) = kinds(tracker.events, "seam_crossing")
        assert crossing.charges == (1, 1)
        assert crossing.position == pytest.approx((0.0, 0.3))


def test_cylinder_does_not_link_a_flipped_charge() -> None:
    tracker = VortexTracker(L, W, "cylinder", max_distance=0.5)
    run(tracker, [([[9.95, 0.3]], [1]), ([[0.10, 0.3]], [-1])])
    assert len(tracker.tracks) == 2
    # The Möbius data (v reflected) is not a short hop on the cylinder at all.
    tracker = VortexTracker(L, W, "cylinder", max_distance=0.5)
    run(tracker, [([[9.95, 0.3]], [1]), ([[0.10, -0.3]], [-1])])
    assert len(tracker.tracks) == 2


def test_torus_v_wrap_links_without_seam_crossing() -> None:
    tracker = VortexTracker(L, W, "torus", max_distance=0.5)
    run(tracker, [([[4.0, 0.95]], [1]), ([[4.0, -0.95]], [1])])
    assert len(tracker.tracks) == 1
    assert tracker.seam_crossings == 0


def test_jump_longer_than_max_distance_is_death_plus_birth() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    run(tracker, [([[2.0, 0.0]], [1]), ([[2.4, 0.0]], [1]), ([[3.0, 0.0]], [1])])
    assert len(tracker.tracks) == 2
    first, second = tracker.tracks
    assert first.death_time == 2.0 and first.lifetime() == 2.0
    assert second.birth_time == 2.0 and second.alive and not second.initial
    assert [e.kind for e in tracker.events] == ["death", "birth"]
    assert tracker.events[0].position == pytest.approx((2.4, 0.0))


def test_charge_two_vortex_is_tracked() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    run(tracker, [([[5.0, 0.0]], [2]), ([[5.1, 0.0]], [2]), ([[5.2, 0.0]], [1])])
    assert len(tracker.tracks) == 2  # a change of |q| is not the same vortex


def test_assignment_is_optimal_where_greedy_leaves_a_vortex_unlinked() -> None:
    # Closest pair first would link b -> x (0.45) and leave a and y without a link
    # (a -> y is 1.5 > max_distance). The optimal assignment links a -> x and b -> y.
    tracker = VortexTracker(L, W, "mobius", max_distance=0.6)
    tracker.update([[1.0, 0.0], [2.0, 0.0]], [1, 1], 0.0)
    ids = tracker.update([[1.55, 0.0], [2.5, 0.0]], [1, 1], 1.0)
    assert ids.tolist() == [0, 1]
    assert not kinds(tracker.events, "birth") and not kinds(tracker.events, "death")


def test_assignment_minimises_total_distance() -> None:
    # Greedy: b -> x (0.1), then a -> y (2.0): total 2.1. Optimal: a -> x (0.9), b -> y (1.0).
    tracker = VortexTracker(L, W, "mobius", max_distance=2.5)
    tracker.update([[0.5, 0.0], [1.5, 0.0]], [1, 1], 0.0)
    ids = tracker.update([[1.4, 0.0], [2.5, 0.0]], [1, 1], 1.0)
    assert ids.tolist() == [0, 1]


def test_ids_follow_input_order_and_are_stable() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    first = tracker.update([[1.0, 0.0], [3.0, 0.5], [6.0, -0.5]], [1, -1, 1], 0.0)
    assert first.tolist() == [0, 1, 2]
    second = tracker.update([[6.1, -0.5], [1.1, 0.0], [8.0, 0.0], [3.1, 0.5]], [1, 1, -1, -1], 1.0)
    assert second.tolist() == [2, 0, 3, 1]
    assert [track.track_id for track in tracker.alive] == [0, 1, 2, 3]
    assert tracker.track(3).birth_time == 1.0
    with pytest.raises(KeyError):
        tracker.track(7)


# ---------------------------------------------------------------------------------------------
# tracker: pair events
# ---------------------------------------------------------------------------------------------


def test_opposite_pair_vanishing_together_is_one_annihilation() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5, annihilation_distance=0.5)
    run(
        tracker,
        [
            ([[5.0, 0.1], [5.4, 0.1], [8.0, 0.0]], [1, -1, 1]),
            ([[5.0, 0.1], [5.2, 0.1], [8.0, 0.0]], [1, -1, 1]),
            ([[8.0, 0.0]], [1]),
        ],
    )
    (event,) = kinds(tracker.events, "annihilation")
    assert event.time == 2.0
    assert event.track_ids == (0, 1) and event.charges == (1, -1)
    assert event.position == pytest.approx((5.1, 0.1))
    assert len(kinds(tracker.events, "death")) == 2
    assert tracker.tracks[0].annihilated_with == 1 and tracker.tracks[1].annihilated_with == 0
    assert tracker.tracks[2].alive


def test_same_charge_or_distant_pairs_do_not_annihilate() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5, annihilation_distance=0.5)
    run(tracker, [([[5.0, 0.1], [5.2, 0.1]], [1, 1]), ([], [])])
    assert not kinds(tracker.events, "annihilation")
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5, annihilation_distance=0.5)
    run(tracker, [([[5.0, 0.1], [6.0, 0.1]], [1, -1]), ([], [])])
    assert not kinds(tracker.events, "annihilation")
    assert len(kinds(tracker.events, "death")) == 2


def test_annihilation_across_the_mobius_seam_uses_the_band_frame() -> None:
    # Two chart charges +1 on either side of the seam are a vortex-antivortex pair on the band.
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5, annihilation_distance=0.5)
    run(tracker, [([[9.95, 0.2], [0.05, -0.2]], [1, 1]), ([], [])])
    (event,) = kinds(tracker.events, "annihilation")
    assert event.position == pytest.approx((0.0, -0.2))
    # The same chart data on the cylinder is a like-charge pair 0.41 apart: no annihilation.
    tracker = VortexTracker(L, W, "cylinder", max_distance=0.5, annihilation_distance=0.5)
    run(tracker, [([[9.95, 0.2], [0.05, -0.2]], [1, 1]), ([], [])])
    assert not kinds(tracker.events, "annihilation")


def test_each_vortex_annihilates_at_most_once() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5, annihilation_distance=0.5)
    run(tracker, [([[5.0, 0.0], [5.1, 0.0], [5.3, 0.0]], [1, -1, 1]), ([], [])])
    (event,) = kinds(tracker.events, "annihilation")
    assert event.track_ids == (0, 1)  # the closest eligible pair


def test_opposite_pair_appearing_together_is_one_pair_creation() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5, creation_distance=0.3)
    run(tracker, [([[8.0, 0.0]], [1]), ([[8.0, 0.0], [3.0, 0.0], [3.2, 0.0]], [1, 1, -1])])
    (event,) = kinds(tracker.events, "pair_creation")
    assert event.time == 1.0 and event.track_ids == (1, 2) and event.charges == (1, -1)
    assert event.position == pytest.approx((3.1, 0.0))
    assert len(kinds(tracker.events, "birth")) == 2
    assert tracker.tracks[1].created_with == 2 and tracker.tracks[2].created_with == 1


def test_first_snapshot_has_no_observed_births() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    tracker.update([[3.0, 0.0], [3.2, 0.0]], [1, -1], 0.0)
    assert tracker.events == []
    assert all(track.initial for track in tracker.tracks)
    tracker.update([], [], 1.0)
    tracker.update([[4.0, 0.0]], [1], 2.0)
    tracker.update([], [], 3.0)
    np.testing.assert_allclose(tracker.lifetimes(), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(tracker.lifetimes(include_initial=False), [1.0])


def test_summary_counts() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    assert math.isnan(tracker.summary()["mean_lifetime"])
    run(
        tracker,
        [
            ([[9.95, 0.3], [4.0, 0.0], [4.2, 0.0]], [1, 1, -1]),
            ([[0.10, -0.3]], [-1]),
            ([[0.20, -0.3], [6.0, 0.0], [6.1, 0.0]], [-1, -1, 1]),
        ],
    )
    summary = tracker.summary()
    assert summary == {
        "n_updates": 3,
        "n_tracks": 5,
        "n_alive": 3,
        "n_initial": 3,
        "n_births": 2,
        "n_deaths": 2,
        "n_annihilations": 1,
        "n_pair_creations": 1,
        "n_seam_crossings": 1,
        "mean_lifetime": 1.0,
        "time": 2.0,
    }


# ---------------------------------------------------------------------------------------------
# tracker: inputs
# ---------------------------------------------------------------------------------------------


def test_tracker_accepts_torch_tensors() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    tracker.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), torch.tensor(0.0))
    ids = tracker.update(torch.tensor([[1.2, 0.0]], dtype=torch.float32), torch.tensor([1]), 1.0)
    assert ids.tolist() == [0]


def test_positions_outside_the_chart_are_wrapped_with_the_flip() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    tracker.update([[L, 0.3]], [1], 0.0)  # (L, 0.3) is the chart point (0, -0.3)
    track = tracker.tracks[0]
    assert track.position == pytest.approx((0.0, -0.3))
    assert track.charge == -1


def test_equal_times_are_allowed() -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    tracker.update([[1.0, 0.0]], [1], 1.0)
    tracker.update([[1.0, 0.0]], [1], 1.0)
    assert len(tracker.tracks) == 1


@pytest.mark.parametrize(
    ("positions", "charges", "t", "match"),
    [
        ([[1.0, 0.0]], [1], 0.5, "t must not decrease"),
        ([[1.0, 0.0]], [1], float("nan"), "t must be a finite"),
        ([[np.nan, 0.0]], [1], 2.0, "positions contains non-finite"),
        ([[1.0, 2.0]], [1], 2.0, "positions has"),
        ([1.0, 0.0], [1], 2.0, r"positions must have shape \[K, 2\]"),
        ([[1.0, 0.0, 0.0]], [1], 2.0, "positions must have shape"),
        ([[1.0, 0.0]], [1, -1], 2.0, "charges must have shape"),
        ([[1.0, 0.0]], [0], 2.0, "non-zero"),
        ([[1.0, 0.0]], [0.5], 2.0, "integers"),
        ([[1.0, 0.0]], [True], 2.0, "integers"),
    ],
)
def test_update_rejects_bad_input(positions: object, charges: object, t: float, match: str) -> None:
    tracker = VortexTracker(L, W, "mobius", max_distance=0.5)
    tracker.update([[1.0, 0.0]], [1], 1.0)
    with pytest.raises(LatticeError, match=match) as info:
        tracker.update(positions, charges, t)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError) and isinstance(info.value, HHmLError)
    # A rejected update leaves the tracker untouched.
    assert tracker.n_updates == 1 and len(tracker.tracks) == 1 and tracker.time == 1.0


def test_tracker_rejects_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="max_distance"):
        VortexTracker(L, W, "mobius", max_distance=0.0)
    with pytest.raises(ConfigError, match="annihilation_distance"):
        VortexTracker(L, W, "mobius", max_distance=0.5, annihilation_distance=-1.0)
    with pytest.raises(ConfigError, match="creation_distance"):
        VortexTracker(L, W, "mobius", max_distance=0.5, creation_distance=float("inf"))
    with pytest.raises(LatticeError, match="topology"):
        VortexTracker(L, W, "sphere", max_distance=0.5)  # type: ignore[arg-type]
    with pytest.raises(LatticeError, match="half_width"):
        VortexTracker(L, 0.0, max_distance=0.5)


def test_default_thresholds() -> None:
    tracker = VortexTracker(L, W, max_distance=0.4)
    assert tracker.topology == "mobius"
    assert tracker.annihilation_distance == 0.4 and tracker.creation_distance == 0.4
    tracker = VortexTracker(L, W, max_distance=0.4, annihilation_distance=0.2)
    assert tracker.creation_distance == 0.2


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_lattice_of_drifting_vortices_keeps_every_track(topology: Topology) -> None:
    # 30 vortices drift along u in lifted coordinates; the tracker sees them in the chart,
    # with v reflected and charge negated after each Möbius turn. Nothing is born or dies,
    # and the seam-crossing count equals the number of whole turns crossed.
    rng = np.random.default_rng(7)
    u0, v0 = np.meshgrid(np.arange(10) * 1.0 + 0.05, [-0.5, 0.0, 0.5], indexing="ij")
    lifted = np.stack([u0.ravel(), v0.ravel()], axis=-1)
    charges0 = rng.choice([-1, 1], size=lifted.shape[0])
    tracker = VortexTracker(L, W, topology, max_distance=0.2)
    steps = 80
    for step in range(steps):
        chart, flipped = wrap_to_chart(lifted, length=L, half_width=W, topology=topology)
        ids = tracker.update(chart, np.where(flipped, -charges0, charges0), float(step))
        assert ids.tolist() == list(range(lifted.shape[0]))
        lifted = lifted + np.array([0.13, 0.0])
    assert len(tracker.tracks) == lifted.shape[0]
    assert tracker.events == kinds(tracker.events, "seam_crossing")
    turns = np.floor((u0.ravel() + 0.13 * (steps - 1)) / L).astype(int)
    assert [track.seam_crossings for track in tracker.tracks] == turns.tolist()
