"""Settings of ``trajfusion reflect`` (``ReflectSettings``, declared once: trajfusion.settings).

Every value the TAPO summary leaves open is a setting here, and its default is this project's
assumption (docs/architecture.md, "Micro-reflective trajectories (TAPO)")."""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.io import InputError
from trajfusion.reflection_tags import ANALYSIS_TAG, RECONSTRUCTION_TAG
from trajfusion.sample.backends.options import GenerationSettings
from trajfusion.settings import Settings, at_least, between, positive, setting
from trajfusion.vocabulary import REFLECT_CONSTRUCTORS

INCORRECT_RULES = ("shortest_of_largest_group", "shortest")
STEP_SPLITS = ("lines", "paragraphs")


def _tag_name(value: str) -> str | None:
    return None if value.isidentifier() else "must be a tag name (letters, digits, underscores)"


def _generation(value) -> dict:
    """A JSON object of ``GenerationSettings`` fields (the constructor model's generation)."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    try:
        GenerationSettings.from_dict(value, "generation")
    except InputError as exc:
        raise ValueError(str(exc)) from None
    return value


@dataclass(frozen=True, kw_only=True)
class ReflectSettings(Settings):
    seed: int = setting(0, help="seed of y+ (the fusion seed, so that y+ is fusion's y*) and of the capped choice")
    band_low: float = setting(0.25, help="lowest accuracy 1 - r(x) of a candidate problem (inclusive)",
                              check=between(0, 1))
    band_high: float = setting(0.75, help="highest accuracy 1 - r(x) of a candidate problem (inclusive)",
                               check=between(0, 1))
    max_constructions: int | None = setting(None, help="at most this many constructed trajectories (a seeded "
                                            "choice among the constructed ones); unset: no cap", check=at_least(0))
    incorrect_rule: str = setting("shortest_of_largest_group", choices=INCORRECT_RULES,
                                  help="which incorrect trajectory is y-: the shortest of the largest incorrect "
                                  "answer group, or the shortest of all (ties: fewer tokens, then sample_idx)")
    step_split: str = setting("lines", choices=STEP_SPLITS,
                              help="how y- and y+ are split into steps: non-blank lines, or blank-line paragraphs")
    constructor: str = setting("rule", choices=REFLECT_CONSTRUCTORS,
                               help="rule: first step contradicting y+'s results, templated diagnosis (no model); "
                               "model: the generation model answers the prompt template in tagged sections")
    analysis_tag: str = setting(ANALYSIS_TAG, help="tag of the diagnosis section", check=_tag_name)
    reconstruction_tag: str = setting(RECONSTRUCTION_TAG, help="tag of the corrected continuation", check=_tag_name)
    loss_on_prefix: bool = setting(True, help="train on the kept erroneous prefix of y- (false: its tokens get "
                                   "label -100 in training)")
    generation: dict | None = setting(None, help="constructor=model: the model's generation settings (JSON object "
                                      "of the sample stage's generation fields)", parse=_generation)
    workers: int = setting(2, help="verifier worker processes (constructor=model)", check=at_least(0),
                           affects_output=False)
    timeout: float = setting(5.0, help="seconds per verification step (constructor=model)", check=positive)

    def __post_init__(self):
        super().__post_init__()
        if self.band_low > self.band_high:
            raise InputError(f"--band-low {self.band_low} is above --band-high {self.band_high}")
        if self.analysis_tag == self.reconstruction_tag:
            raise InputError("--analysis-tag and --reconstruction-tag must differ")
        if self.constructor == "model" and self.generation is None:
            raise InputError("--generation: required with --constructor model")

    def generation_settings(self) -> GenerationSettings:
        return GenerationSettings.from_dict(self.generation, "generation")
