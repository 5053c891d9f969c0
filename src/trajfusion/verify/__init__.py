"""Answer extraction, output filters, hang-proof verification and per-problem statistics.

Commands: ``trajfusion verify`` (samples -> verified table) and ``trajfusion stats``
(verified table -> statistics table). math-verify is imported only when work starts.
"""

from __future__ import annotations

import importlib

# Loaded on first use (PEP 562): the verifier's worker processes import this package for
# trajfusion.verify.tasks and should not pay for pandas and pyarrow, which the CLI needs.
_EXPORTS = {
    "register": "trajfusion.verify.cli",
    "extract_answer": "trajfusion.verify.extract",
    "normalize_answer": "trajfusion.verify.extract",
    "DEFAULT_FILTERS": "trajfusion.verify.filters",
    "apply_filters": "trajfusion.verify.filters",
    "resolve_filters": "trajfusion.verify.filters",
    "compute_stats": "trajfusion.verify.stats",
    "verify_frame": "trajfusion.verify.verifier",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
