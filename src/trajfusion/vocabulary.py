"""The value sets of the tables' categorical columns, declared once (``trajfusion.contracts``
uses them in its column declarations). A module without imports, so that processes that only
need a name list (the verifier's workers) do not load pandas."""

ANSWER_TYPES = ("number", "integer", "latex", "bool", "list", "option", "text")
FINISH_REASONS = ("stop", "length")
FILTER_REASONS = ("truncated", "unclosed_think", "repetition", "language_switch", "no_answer",
                  "no_reasoning")  # in precedence order (trajfusion.verify.filters)
STATUSES = ("ok", "timeout", "error", *(f"filtered:{reason}" for reason in FILTER_REASONS))
STRATEGIES = ("highdiv", "lowdiv")
GRADERS = ("math_verify", "qwen25_math")  # the first is the default (trajfusion.verify.graders)
ANSWER_FORMATS = ("boxed", "lenient")  # the teacher-side answer rule (trajfusion.verify.extract)
TRAINING_METHODS = ("rft", "trajfusion", "tapo")  # how a fine-tuned model's training data was built
REFLECT_CONSTRUCTORS = ("rule", "model")  # what builds a micro-reflective trajectory (trajfusion.reflect)
BASELINE_METHODS = ("icl", "instruct")  # untrained baselines: few-shot base model, released instruct model
EVALUATED_METHOD = "model"  # an `evaluations:` entry: a model evaluated as it is given
# On-policy distillation losses (trajfusion.distill.losses) and how the report names them.
DISTILL_METHODS = ("opd", "opd_filter", "topd")
DISTILL_METHOD_LABELS = {"opd": "OPD", "opd_filter": "OPD-filter", "topd": "TOPD"}
METHODS = (*TRAINING_METHODS, *BASELINE_METHODS, EVALUATED_METHOD, *DISTILL_METHODS)
