"""Gymnasium environments over the Möbius-lattice simulation.

Public names: ``make_vector_env``, ``MOBIUS_ENV_ID``.
"""

from __future__ import annotations

from hhml.ml.env.factory import MOBIUS_ENV_ID, make_vector_env

__all__ = ["MOBIUS_ENV_ID", "make_vector_env"]
