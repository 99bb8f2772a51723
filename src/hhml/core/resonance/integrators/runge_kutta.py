"""Classical fourth-order Runge–Kutta (RK4) and forward Euler.

Public names: :class:`RK4`, :class:`Euler`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.resonance.integrators.base import Integrator


class RK4(Integrator):
    """Classical RK4: ``R(z) = 1 + z + z²/2 + z³/6 + z⁴/24`` (stable up to
    ``|z| ≈ 2.785`` on the negative axis and ``2√2`` on the imaginary axis)."""

    name = "rk4"
    order = 4

    def step(self, psi: Tensor, t: float, dt: float) -> Tensor:
        f = self.sim.rhs_unchecked
        k1 = f(psi, t)
        k2 = f(psi + (0.5 * dt) * k1, t + 0.5 * dt)
        k3 = f(psi + (0.5 * dt) * k2, t + 0.5 * dt)
        k4 = f(psi + dt * k3, t + dt)
        return psi + (dt / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)

    def amplification(self, z: NDArray[np.complex128]) -> NDArray[np.complex128]:
        return np.asarray(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24, dtype=np.complex128)


class Euler(Integrator):
    """Forward Euler, ``R(z) = 1 + z``: first order; unstable for pure dispersion."""

    name = "euler"
    order = 1

    def step(self, psi: Tensor, t: float, dt: float) -> Tensor:
        return psi + dt * self.sim.rhs_unchecked(psi, t)

    def amplification(self, z: NDArray[np.complex128]) -> NDArray[np.complex128]:
        return np.asarray(1 + z, dtype=np.complex128)
