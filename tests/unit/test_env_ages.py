"""VortexAges against the validated VortexTracker on synthetic trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vortex_ages_reference import VortexAges

from hhml.core.resonance import VortexTracker

L, W = 2.0 * math.pi, 1.0


def _tracker_ages(tracker: VortexTracker, t: float, n: int) -> np.ndarray:
    return np.sort([t - tr.birth_time for tr in tracker.alive]) if n else np.zeros(0)


@pytest.mark.parametrize("topology", ["mobius", "cylinder", "torus"])
def test_ages_match_the_tracker_for_slowly_moving_vortices(topology: str) -> None:
    rng = np.random.default_rng(4)
    n = 12
    pos = np.column_stack([rng.uniform(0, L, n), rng.uniform(-0.8, 0.8, n)])
    q = rng.choice([-1, 1], n)
    ages = VortexAges(1, L, W, topology, max_distance=0.3)
    tracker = VortexTracker(L, W, topology, max_distance=0.3)  # type: ignore[arg-type]
    dt = 0.5
    for step in range(8):
        t = step * dt
        if step == 4:  # one vortex disappears, a new pair appears
            pos, q = pos[1:], q[1:]
            pos = np.vstack([pos, [[1.0, 0.1], [1.2, 0.1]]])
            q = np.concatenate([q, [1, -1]])
        a = ages.update(0, pos, q, dt if step else 0.0)
        tracker.update(pos, q, t)
        np.testing.assert_allclose(np.sort(a), _tracker_ages(tracker, t, len(pos)), atol=1e-12)
        # drift along u (wrapping through the seam, where the Möbius chart flips v and q)
        pos = pos + np.array([0.05, 0.0])
        wrapped = pos[:, 0] >= L
        pos[wrapped, 0] -= L
        if topology == "mobius":
            pos[wrapped, 1] *= -1
            q = np.where(wrapped, -q, q)


def test_state_dict_round_trip_and_clear() -> None:
    ages = VortexAges(2, L, W, "mobius", max_distance=0.3)
    pts = np.array([[1.0, 0.0], [2.0, 0.5]])
    ages.update(1, pts, np.array([1, -1]), 0.0)
    other = VortexAges(2, L, W, "mobius", max_distance=0.3)
    other.load_state_dict(ages.state_dict())
    np.testing.assert_allclose(other.update(1, pts, np.array([1, -1]), 0.7), [0.7, 0.7])
    ages.clear(1)
    np.testing.assert_allclose(ages.update(1, pts, np.array([1, -1]), 0.7), [0.0, 0.0])
