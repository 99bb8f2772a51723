"""Base class of the time integrators.

An integrator advances ``dψ/dt = F(ψ, t)`` by one step ``dt``. It takes the
right-hand side as any callable ``F(psi, t) -> Tensor`` or as an equation object
(:class:`~hhml.core.resonance.equation.FieldEquation`, or anything with the methods
of :class:`Equation`), which may offer a fused whole-step kernel and, for the
integrating-factor method, its linear part. Noise and pair seeding are applied by the
simulator after the step (operator splitting). Each integrator states its linear
stability region through :meth:`Integrator.amplification` so the simulator can reject
a time step that is too large *before* stepping::

    from hhml.core.resonance.integrators import RK4
    RK4(lambda psi, t: -psi).step(psi, 0.0, 0.1)   # one RK4 step of dψ/dt = −ψ

Public names: :class:`Integrator`, :class:`Equation`, :class:`SplitEquation`,
:data:`RHS`, :func:`max_stable_dt`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from torch import Tensor

if TYPE_CHECKING:
    from hhml.core.mobius import MobiusStrip

#: A right-hand side ``F(psi, t)``: the state's shape in, the same shape out.
RHS = Callable[[Tensor, float], Tensor]


@runtime_checkable
class Equation(Protocol):
    """What an integrator needs of an equation object."""

    def rhs_unchecked(self, psi: Tensor, t: float) -> Tensor:
        """``F(ψ, t)`` without argument checks."""

    def fused_rk4_step(self, psi: Tensor, t: float, dt: float) -> Tensor | None:
        """One whole RK4 step by a fused kernel, or None where none applies."""


@runtime_checkable
class SplitEquation(Equation, Protocol):
    """An equation ``F = 𝓛ψ + N(ψ, t)`` with a linear part diagonal in the flat
    lattice's eigenbasis (what :class:`IntegratingFactorRK4` needs)."""

    chart: MobiusStrip

    def linear_symbol(self, eigenvalues: Tensor) -> Tensor:
        """The symbol of 𝓛 at the Laplacian eigenvalues."""

    def nonlinear(self, psi: Tensor, t: float) -> Tensor:
        """``N(ψ, t)``."""


class _CallableEquation:
    """A bare callable ``F(psi, t)`` as an :class:`Equation` (no fused step)."""

    def __init__(self, f: RHS) -> None:
        self.rhs_unchecked = f

    def fused_rk4_step(self, psi: Tensor, t: float, dt: float) -> Tensor | None:
        return None


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

    def __init__(self, equation: Equation | RHS) -> None:
        if isinstance(equation, Equation):
            self.equation: Equation = equation
        elif callable(equation):
            self.equation = _CallableEquation(equation)
        else:
            from hhml.errors import ConfigError

            raise ConfigError(
                f"{type(self).__name__} needs a right-hand side F(psi, t) or an equation "
                f"object; got {type(equation).__name__}"
            )
        self.rhs: RHS = self.equation.rhs_unchecked

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
