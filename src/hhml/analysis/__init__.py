"""Analysis of runs, checkpoints and snapshots: statistics beside their null models.

Subpackages and modules are listed in ``docs/analysis.md``; :mod:`hhml.analysis.dark_matter`
is the ensemble-branch analysis.
"""
