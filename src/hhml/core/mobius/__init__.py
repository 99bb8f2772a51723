"""Lattices: the Möbius strip (with cylinder/torus controls) and nested stacks.

Public names: :class:`MobiusStrip`, :class:`TokamakStack`,
:func:`band_laplacian`,
:class:`LatticeEnsemble`, :func:`chart_of`, :class:`CircleCentreline`, :class:`MillerCentreline`.
"""

from hhml.core.mobius.ensemble import GEOMETRY_KEYS, LatticeEnsemble
from hhml.core.mobius.geometry import CircleCentreline, MillerCentreline
from hhml.core.mobius.lattice import EDGES, METRICS, TOPOLOGIES, MobiusStrip, band_laplacian
from hhml.core.mobius.stack import TokamakStack, chart_of

__all__ = [
    "EDGES",
    "GEOMETRY_KEYS",
    "METRICS",
    "TOPOLOGIES",
    "CircleCentreline",
    "LatticeEnsemble",
    "MillerCentreline",
    "MobiusStrip",
    "TokamakStack",
    "band_laplacian",
    "chart_of",
]
