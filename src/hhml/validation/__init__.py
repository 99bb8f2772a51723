"""Physics validation: named checks against independent references.

Public names: :class:`CheckResult`, :data:`CHECKS`, :func:`run_checks`.
"""

from hhml.validation.checks import CHECKS, CheckResult, run_checks

__all__ = ["CHECKS", "CheckResult", "run_checks"]
