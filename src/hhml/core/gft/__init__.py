"""Group field theory, checked against closed-form results.

Modules: :mod:`~.colored_tensors` (melonic Schwinger–Dyson equation, critical point,
Fuss–Catalan series, Gurau degree of colored graphs) and :mod:`~.condensate` (mean-field
condensate cosmology with a relational clock: conserved charges, bounce, Friedmann limit).
See ``docs/science.md``.
"""
