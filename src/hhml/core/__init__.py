"""Core physics of HHmL: lattices (:mod:`hhml.core.mobius`) and field dynamics,
vortex detection and tracking (:mod:`hhml.core.resonance`).

``core`` never imports from ``hhml.ml``, ``hhml.analysis`` or ``hhml.cli``.
"""
