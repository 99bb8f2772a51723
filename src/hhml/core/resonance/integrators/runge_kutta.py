"""Classical fourth-order Runge–Kutta (RK4) and forward Euler.

Public names: :class:`RK4`, :class:`Euler`.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from hhml.core.resonance.integrators.base import Integrator


class RK4(Integrator):
    """Classical RK4: ``R(z) = 1 + z + z²/2 + z³/6 + z⁴/24`` (stable up to
    ``|z| ≈ 2.785`` on the negative axis and ``2√2`` on the imaginary axis)."""

    name = "rk4"
    order = 4

    def step(self, psi: Tensor, t: float, dt: float) -> Tensor:
        # the whole step in one fused kernel (stage combinations included; the same
        # numbers to rounding): the C++ kernels on a CPU, the compiled step of
        # hhml.core.resonance.compiled_rk4 elsewhere; None where none applies
        fused = self.equation.fused_rk4_step(psi, t, dt)
        if fused is not None:
            return fused
        f = self.rhs
        # fused axpy (`alpha=`) and one accumulator: the stage combinations, not the four
        # right-hand sides, dominate the cost of a step on large grids
        k = f(psi, t)
        acc = k.clone()
        k = f(torch.add(psi, k, alpha=0.5 * dt), t + 0.5 * dt)
        acc.add_(k, alpha=2.0)
        k = f(torch.add(psi, k, alpha=0.5 * dt), t + 0.5 * dt)
        acc.add_(k, alpha=2.0)
        k = f(torch.add(psi, k, alpha=dt), t + dt)
        acc.add_(k)
        return torch.add(psi, acc, alpha=dt / 6.0)

    def amplification(self, z: NDArray[np.complex128]) -> NDArray[np.complex128]:
        return np.asarray(1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24, dtype=np.complex128)


class Euler(Integrator):
    """Forward Euler, ``R(z) = 1 + z``: first order; unstable for pure dispersion."""

    name = "euler"
    order = 1

    def step(self, psi: Tensor, t: float, dt: float) -> Tensor:
        return psi + dt * self.rhs(psi, t)

    def amplification(self, z: NDArray[np.complex128]) -> NDArray[np.complex128]:
        return np.asarray(1 + z, dtype=np.complex128)
