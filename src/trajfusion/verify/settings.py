"""Settings of ``trajfusion verify``: declared once (trajfusion.settings), read by the CLI and the rule."""

from __future__ import annotations

from dataclasses import dataclass

from trajfusion.settings import Settings, at_least, positive, setting
from trajfusion.verify.filters import DEFAULT_ANSWER_FORMAT, resolve_filters
from trajfusion.vocabulary import ANSWER_FORMATS


def _filter_overrides(value) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    resolve_filters(value)  # raises ValueError naming the bad key or value
    return value


@dataclass(frozen=True)
class VerifySettings(Settings):
    workers: int = setting(2, help="worker processes (0 = verify inline in this process)", check=at_least(0),
                           affects_output=False)
    timeout: float = setting(5.0, help="seconds per verification step", check=positive)
    filters: dict | None = setting(None, help="overrides of the output filters' settings "
                                   "(trajfusion.verify.filters.DEFAULT_FILTERS), e.g. {\"ngram_repeat_share\": 0.6}",
                                   parse=_filter_overrides)
    answer_format: str = setting(DEFAULT_ANSWER_FORMAT, choices=ANSWER_FORMATS,
                                 help="the teacher's answer rule: boxed (a final \\boxed{}, paper A.1) or lenient "
                                 "(also 'the answer is ...' and the last number); trajfusion.verify.extract")

    def provenance(self) -> dict:
        return {"stage": "verify", "timeout": self.timeout,
                "filters": resolve_filters(self.filters, self.answer_format)}
