"""The value sets of the tables' categorical columns, declared once (``trajfusion.contracts``
uses them in its column declarations). A module without imports, so that processes that only
need a name list (the verifier's workers) do not load pandas."""

ANSWER_TYPES = ("number", "integer", "latex", "bool", "list", "option", "text")
FINISH_REASONS = ("stop", "length")
FILTER_REASONS = ("truncated", "repetition", "language_switch", "no_answer")  # in precedence order
STATUSES = ("ok", "timeout", "error", *(f"filtered:{reason}" for reason in FILTER_REASONS))
STRATEGIES = ("highdiv", "lowdiv")
TRAINING_METHODS = ("rft", "trajfusion")  # how a fine-tuned model's training data was built
BASELINE_METHODS = ("icl", "instruct")  # untrained baselines: few-shot base model, released instruct model
METHODS = (*TRAINING_METHODS, *BASELINE_METHODS)
