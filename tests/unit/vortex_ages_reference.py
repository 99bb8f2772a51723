"""Reference vortex ages with the minimum-cost assignment (the env's rule before 0.2).

Kept as a test oracle for :mod:`hhml.ml.env.measure`, whose batched rule agrees with this
one wherever every link is unique.

Each update links the new detections of one strip to the previous ones with the
linking rule of :class:`~hhml.core.resonance.VortexTracker`: a link must be at most
``max_distance`` long (shortest path through the identification,
:func:`~hhml.core.resonance.tracking.band_displacement`) and keep the charge, which
flips when the path crosses the Möbius seam; among the allowed links the total
length is minimised (:func:`scipy.optimize.linear_sum_assignment`). A linked
vortex is ``dt`` older than its predecessor, an unlinked one has age 0. Unlike the
tracker it keeps no history or events, and its state is a few arrays, so it is
cheap and checkpoints exactly.

Public names: ``VortexAges``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from scipy.optimize import linear_sum_assignment

from hhml.core.resonance.tracking import band_displacement

__all__ = ["VortexAges"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class VortexAges:
    """Ages of the vortices of ``slots`` independent strips.

    Parameters
    ----------
    slots
        Number of independent point sets (environments × strips).
    length, half_width, topology
        The band the positions live on.
    max_distance
        Longest link between consecutive updates (length).
    """

    def __init__(
        self, slots: int, length: float, half_width: float, topology: str, max_distance: float
    ) -> None:
        self.length, self.half_width, self.topology = length, half_width, topology
        self.max_distance = max_distance
        self._pos: list[FloatArray] = [np.zeros((0, 2)) for _ in range(slots)]
        self._charge: list[IntArray] = [np.zeros(0, dtype=np.int64) for _ in range(slots)]
        self._age: list[FloatArray] = [np.zeros(0) for _ in range(slots)]

    def clear(self, slot: int) -> None:
        """Forget the vortices of ``slot`` (a new episode)."""
        self._pos[slot] = np.zeros((0, 2))
        self._charge[slot] = np.zeros(0, dtype=np.int64)
        self._age[slot] = np.zeros(0)

    def update(self, slot: int, positions: FloatArray, charges: IntArray, dt: float) -> FloatArray:
        """Link ``positions [n, 2]`` / ``charges [n]`` to the previous ones; return ages ``[n]``."""
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        q = np.asarray(charges, dtype=np.int64).reshape(-1)
        ages = np.zeros(len(pos))
        old_pos, old_q, old_age = self._pos[slot], self._charge[slot], self._age[slot]
        if len(pos) and len(old_pos):
            d = band_displacement(
                old_pos[:, None, :],
                pos[None, :, :],
                length=self.length,
                half_width=self.half_width,
                topology=self.topology,  # type: ignore[arg-type]
            )
            flip = d.crosses_seam & (self.topology == "mobius")
            transported = np.where(flip, -old_q[:, None], old_q[:, None])
            allowed = (d.distance <= self.max_distance) & (transported == q[None, :])
            if allowed.any():
                # forbidden links cost more than any set of allowed ones: the assignment
                # first maximises the number of links, then minimises their length
                big = self.max_distance * (min(allowed.shape) + 1)
                cost = np.where(allowed, d.distance, big)
                rows, cols = linear_sum_assignment(cost)
                keep = allowed[rows, cols]
                ages[cols[keep]] = old_age[rows[keep]] + dt
        self._pos[slot], self._charge[slot], self._age[slot] = pos, q, ages
        return ages

    def state_dict(self) -> dict[str, Any]:
        """All arrays, as CPU tensors (for checkpoints)."""
        return {
            "positions": [torch.from_numpy(p.copy()) for p in self._pos],
            "charges": [torch.from_numpy(c.copy()) for c in self._charge],
            "ages": [torch.from_numpy(a.copy()) for a in self._age],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._pos = [t.numpy().astype(np.float64) for t in state["positions"]]
        self._charge = [t.numpy().astype(np.int64) for t in state["charges"]]
        self._age = [t.numpy().astype(np.float64) for t in state["ages"]]
