"""The map of agent actions in [−1, 1] onto an environment's action box, defined once.

The trainer, the equal-budget baselines and ``hhml-evaluate`` all act through it, so an
agent and a baseline playing the same action in [−1, 1] send the env the same numbers.

Public names: :func:`scale_to_box`, :func:`is_bounded`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from torch import Tensor

__all__ = ["is_bounded", "scale_to_box"]


def is_bounded(low: npt.ArrayLike, high: npt.ArrayLike) -> bool:
    """Whether every bound of the box is finite (else actions are passed through as is)."""
    return bool(np.all(np.isfinite(np.asarray(low))) and np.all(np.isfinite(np.asarray(high))))


def scale_to_box(action: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """``low + (a + 1)/2 · (high − low)``, clipped to ``[low, high]``.

    Parameters
    ----------
    action
        Actions ``[..., A]`` in [−1, 1] (float32).
    low, high
        The box bounds ``[A]`` (float32, finite), on the actions' device.
    """
    scaled = low + (action + 1.0) * 0.5 * (high - low)
    out: Tensor = scaled.clamp(min=low, max=high)
    return out
