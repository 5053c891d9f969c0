"""The tags of TAPO's micro-reflective trajectories, declared once.

The reflect stage writes an assistant text whose diagnosis is ``<analysis>…</analysis>`` and
whose corrected continuation is ``<reconstruction>…</reconstruction>``; the report counts a
response that opens an analysis tag as one with a reflection (``has_analysis``, used by the
Direct Solution Rate and the Effective Reflection Rate). Assumption: the TAPO summary says
only "XML-style tags for the analysis and reconstruction phases", not their names.
"""

from __future__ import annotations

ANALYSIS_TAG = "analysis"
RECONSTRUCTION_TAG = "reconstruction"
TAGS = (ANALYSIS_TAG, RECONSTRUCTION_TAG)


def open_tag(name: str) -> str:
    return f"<{name}>"


def close_tag(name: str) -> str:
    return f"</{name}>"


def has_analysis(text: str) -> bool:
    """True when ``text`` opens an analysis section (the exact tag, as the reflect stage writes it)."""
    return open_tag(ANALYSIS_TAG) in text
