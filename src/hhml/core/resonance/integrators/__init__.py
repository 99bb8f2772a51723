"""Time integrators: adding one is adding a file and a line in :data:`INTEGRATORS`.

Each takes the right-hand side it advances — a callable ``F(psi, t)`` or an equation
object such as :class:`~hhml.core.resonance.equation.FieldEquation` — and knows nothing
of the simulator.

Public names: :class:`Integrator`, :class:`Equation`, :class:`SplitEquation`,
:class:`RK4`, :class:`Euler`, :class:`IntegratingFactorRK4`, :data:`INTEGRATORS`,
:func:`max_stable_dt`.
"""

from hhml.core.resonance.integrators.base import (
    Equation,
    Integrator,
    SplitEquation,
    max_stable_dt,
)
from hhml.core.resonance.integrators.exponential import IntegratingFactorRK4
from hhml.core.resonance.integrators.runge_kutta import RK4, Euler

#: Integrators by config name.
INTEGRATORS: dict[str, type[Integrator]] = {
    "rk4": RK4,
    "euler": Euler,
    "etd": IntegratingFactorRK4,
}

__all__ = [
    "INTEGRATORS",
    "RK4",
    "Equation",
    "Euler",
    "IntegratingFactorRK4",
    "Integrator",
    "SplitEquation",
    "max_stable_dt",
]
