"""The value sets of the tables' categorical columns, declared once (``trajfusion.contracts``
uses them in its column declarations). A module without imports, so that processes that only
need a name list (the verifier's workers) do not load pandas."""

ANSWER_TYPES = ("number", "integer", "latex", "bool", "list", "option", "text")
FINISH_REASONS = ("stop", "length")
FILTER_REASONS = ("truncated", "repetition", "language_switch", "no_answer")  # in precedence order
STATUSES = ("ok", "timeout", "error", *(f"filtered:{reason}" for reason in FILTER_REASONS))
STRATEGIES = ("highdiv", "lowdiv")
GRADERS = ("math_verify", "qwen25_math")  # the first is the default (trajfusion.verify.graders)
