"""Reports of a finished run: ``OUT/report.html`` (:func:`~sparsevid.report.html.write_report`)."""
from __future__ import annotations

from sparsevid.report.html import REPORT_NAME, write_report

__all__ = ["REPORT_NAME", "write_report"]
