"""HHmL — Holo-Harmonic Möbius Lattice.

Complex fields on Möbius-strip lattices, their topological vortices (phase
singularities), and the tools to simulate, detect and validate them.
"""

from __future__ import annotations

__version__ = "0.2.0.dev0"

__all__ = ["__version__"]
