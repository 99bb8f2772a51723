"""Analysis of runs, checkpoints and snapshots: statistics beside their null models.

Modules: :mod:`~hhml.analysis.loading` (run directories, checkpoints, snapshots),
:mod:`~hhml.analysis.vortex_statistics`, :mod:`~hhml.analysis.point_process`,
:mod:`~hhml.analysis.correlations`, :mod:`~hhml.analysis.conservation`,
:mod:`~hhml.analysis.parameter_outcome`, :mod:`~hhml.analysis.bootstrap` (resampling,
Holm/BH), :mod:`~hhml.analysis.dark_matter` (ensemble branches) and
:mod:`~hhml.analysis.report` (``hhml-analyze``). See ``docs/analysis.md``.

Public names: ``Estimate``, ``load_run``, ``load_snapshot``, ``open_input``,
``build_report``, ``write_report``.
"""

from __future__ import annotations

from hhml.analysis.bootstrap import Estimate
from hhml.analysis.loading import load_run, load_snapshot, open_input
from hhml.analysis.report import build_report, write_report

__all__ = ["Estimate", "build_report", "load_run", "load_snapshot", "open_input", "write_report"]
