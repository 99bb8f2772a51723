"""Lattices: the Möbius strip (with cylinder/torus controls) and nested stacks.

Public names: :class:`MobiusStrip`, :class:`TokamakStack`,
:func:`band_laplacian`, :class:`CircleCentreline`, :class:`MillerCentreline`.
"""

from hhml.core.mobius.geometry import CircleCentreline, MillerCentreline
from hhml.core.mobius.lattice import EDGES, METRICS, TOPOLOGIES, MobiusStrip, band_laplacian
from hhml.core.mobius.stack import TokamakStack

__all__ = [
    "EDGES",
    "METRICS",
    "TOPOLOGIES",
    "CircleCentreline",
    "MillerCentreline",
    "MobiusStrip",
    "TokamakStack",
    "band_laplacian",
]
