"""Base class of the time integrators.

An integrator advances the deterministic part of the equation by one step
``dt``; noise and pair seeding are applied by the simulator after the step
(operator splitting). Each integrator states its linear stability region
through :meth:`Integrator.amplification` so the simulator can reject a time
step that is too large *before* stepping.

Public names: :class:`Integrator`, :func:`max_stable_dt`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

if TYPE_CHECKING:
    from hhml.core.resonance.simulator import Simulator

RHS = Callable[[Tensor, float], Tensor]


class Integrator(ABC):
    """One-step method for ``dψ/dt = rhs(ψ, t)``.

    Attributes
    ----------
    name : str
        Name used in configs (``"rk4"``, ``"euler"``, ``"etd"``).
    order : int
        Global order of accuracy in dt.
    """

    name: str = ""
    order: int = 0

    def __init__(self, simulator: Simulator) -> None:
        self.sim = simulator

    @abstractmethod
    def step(self, psi: Tensor, t: float, dt: float) -> Tensor:
        """Return the state after one step of size ``dt`` from ``(psi, t)``."""

    def prepare(self) -> None:  # noqa: B027 (optional hook, default: nothing to cache)
        """Recompute cached operators after the parameters or the lattice changed."""

    def amplification(self, z: NDArray[np.complex128]) -> NDArray[np.complex128] | None:
        """Stability function ``R(z)`` for ``z = dt·μ`` on the linear spectrum, or
        None if the method treats the linear part exactly (no linear limit)."""
        return None


def max_stable_dt(
    amplification: Callable[[NDArray[np.complex128]], NDArray[np.complex128]],
    mu: NDArray[np.complex128],
    dt_hint: float,
) -> float:
    """Largest ``dt`` with ``|R(dt μ)| ≤ 1`` for every sampled eigenvalue ``μ``.

    Eigenvalues with positive real part (physical growth, e.g. the ``(1−γ)``
    term) are excluded by the caller. Found by bracketing and bisection.
    """
    if mu.size == 0 or np.all(np.abs(mu) == 0):
        return float("inf")

    def stable(dt: float) -> bool:
        return bool(np.all(np.abs(amplification(dt * mu)) <= 1.0 + 1e-12))

    lo, hi = 0.0, max(dt_hint, 1e-300)
    while stable(hi):
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return float("inf")
    if lo == 0.0:
        lo = hi
        while not stable(lo):
            lo /= 2.0
            if lo < 1e-300:
                return 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo
