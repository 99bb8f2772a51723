"""Open-loop policies: actions that depend on time only, never on the observation.

Public names: ``ConstantPolicy``, ``SchedulePolicy``, ``segment_of``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hhml.errors import ConfigError

__all__ = ["ConstantPolicy", "SchedulePolicy", "segment_of"]

FloatArray = npt.NDArray[np.float32]


def segment_of(step: int, segments: int, horizon: int) -> int:
    """The segment ``k = ⌊step · K / H⌋`` (clipped to ``K − 1``) active at episode step
    ``step`` of a ``horizon``-step episode split into ``segments`` equal parts."""
    return min(step * segments // horizon, segments - 1)


class SchedulePolicy:
    """Piecewise-constant actions over an episode: ``K`` segments of ``H / K`` steps.

    Parameters
    ----------
    actions
        ``[K, act_dim]`` in ``[-1, 1]``; row ``k`` is used on the steps of segment ``k``
        (:func:`segment_of`).
    horizon
        Episode length ``H`` the segments divide (steps after ``H`` keep the last row).
    """

    def __init__(self, actions: npt.ArrayLike, horizon: int) -> None:
        table = np.asarray(actions, dtype=np.float32)
        if table.ndim != 2 or table.shape[0] < 1 or horizon < 1:
            raise ConfigError(
                f"a schedule needs actions [K >= 1, act_dim] and a horizon >= 1, got "
                f"shape {table.shape} and horizon {horizon}"
            )
        if not np.all(np.isfinite(table)) or np.abs(table).max() > 1.0:
            raise ConfigError("schedule actions must be finite and within [-1, 1]")
        self.actions = table
        self.horizon = int(horizon)
        self._step = 0

    def reset(self) -> None:
        """Start a new episode (segment 0)."""
        self._step = 0

    def __call__(self, obs: FloatArray) -> FloatArray:
        """``[N, act_dim]``: the current segment's action for each of the ``N`` envs."""
        k = segment_of(self._step, self.actions.shape[0], self.horizon)
        self._step += 1
        return np.tile(self.actions[k], (np.shape(obs)[0], 1))


class ConstantPolicy(SchedulePolicy):
    """The same action ``[act_dim]`` in ``[-1, 1]`` at every step (a one-segment schedule)."""

    def __init__(self, action: npt.ArrayLike) -> None:
        super().__init__(np.asarray(action, dtype=np.float32).reshape(1, -1), horizon=1)
