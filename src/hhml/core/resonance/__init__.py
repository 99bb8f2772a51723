"""Field dynamics, vortex detection, tracking and imprinting.

Public names: :class:`Simulator`, :class:`FieldParams` (re-exported from
:mod:`hhml.config.schema`), :func:`winding_numbers`, :func:`detect_vortices`,
:class:`VortexSet`, :func:`vortex_density`, :data:`IID_PHASE_VORTEX_FRACTION`,
:class:`VortexTracker`, :func:`imprint_vortex`, :func:`imprint_pair`,
:class:`FlatSpectralBasis`, :data:`INTEGRATORS`, :class:`FieldEquation`.

The simulator is three parts: the equation (:mod:`~hhml.core.resonance.equation`), the
steppers (:mod:`~hhml.core.resonance.integrators`, which take any ``F(psi, t)``) and the
runner (:mod:`~hhml.core.resonance.runner`: the time loop with trackers).
"""

from hhml.config.schema import FieldParams
from hhml.core.resonance.equation import FieldEquation
from hhml.core.resonance.imprint import imprint_pair, imprint_vortex, vortex_factor
from hhml.core.resonance.integrators import INTEGRATORS
from hhml.core.resonance.simulator import Simulator
from hhml.core.resonance.spectral import FlatSpectralBasis
from hhml.core.resonance.tracking import VortexTracker
from hhml.core.resonance.vortices import (
    IID_PHASE_VORTEX_FRACTION,
    VortexSet,
    detect_vortices,
    vortex_density,
    winding_numbers,
)

__all__ = [
    "IID_PHASE_VORTEX_FRACTION",
    "INTEGRATORS",
    "FieldEquation",
    "FieldParams",
    "FlatSpectralBasis",
    "Simulator",
    "VortexSet",
    "VortexTracker",
    "detect_vortices",
    "imprint_pair",
    "imprint_vortex",
    "vortex_density",
    "vortex_factor",
    "winding_numbers",
]
