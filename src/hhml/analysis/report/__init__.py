"""The ``hhml-analyze`` report: document model, figures and the builder.

Public names: ``build_report``, ``write_report``, ``Document``.
"""

from __future__ import annotations

from hhml.analysis.report.builder import build_report, write_report
from hhml.analysis.report.document import Document

__all__ = ["Document", "build_report", "write_report"]
