"""Answer extraction, output filters, hang-proof verification and per-problem statistics.

Commands: ``trajfusion verify`` (samples -> verified table) and ``trajfusion stats``
(verified table -> statistics table). math-verify is imported only when work starts.
"""

from __future__ import annotations

from trajfusion.verify.cli import register
from trajfusion.verify.extract import extract_answer, normalize_answer
from trajfusion.verify.filters import DEFAULT_FILTERS, apply_filters, resolve_filters
from trajfusion.verify.stats import compute_stats
from trajfusion.verify.verifier import verify_frame

__all__ = ["register", "extract_answer", "normalize_answer", "apply_filters", "resolve_filters",
           "DEFAULT_FILTERS", "verify_frame", "compute_stats"]
