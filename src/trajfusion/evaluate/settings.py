"""Settings of ``trajfusion evaluate``, declared once (trajfusion.settings): the generation
settings shared with sampling, the samples per problem, the verifier's and the grader. Paths (model,
benchmark, phrases, output) are plain flags; the benchmark and phrase files are recorded by
checksum beside the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.sample.backends.options import GenerationSettings
from trajfusion.settings import at_least, positive, setting
from trajfusion.vocabulary import GRADERS


@dataclass(frozen=True, kw_only=True)
class EvaluateSettings(GenerationSettings):
    samples: int = setting(help="samples per problem (16 for AIME, else 1)", check=at_least(1))
    workers: int = setting(1, help="verifier processes (0: verify in this process)", check=at_least(0),
                           affects_output=False)
    timeout: float = setting(5.0, help="verifier timeout per response, seconds", check=positive)
    grader: str = setting(GRADERS[0], choices=GRADERS,
                          help="grader of the verdicts (the other one's verdict is recorded beside them)")
