"""The settings base (trajfusion.settings): one dataclass gives flags, JSON, checks and provenance."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from fractions import Fraction

import pytest

from trajfusion.io import InputError
from trajfusion.settings import Settings, at_least, between, positive, setting


def _fraction(value) -> Fraction:
    return Fraction(str(value))


@dataclass(frozen=True)
class ExampleSettings(Settings):
    k_max: int = setting(help="maximum fused errors", check=at_least(0))
    alpha: Fraction | None = setting(None, help="diversity sensitivity", parse=_fraction)
    strategy: str = setting("highdiv", help="which errors first", choices=("highdiv", "lowdiv"))
    timeout: float = setting(5.0, help="seconds per step", check=positive)
    certainty_prob: float = setting(0.0, help="probability of a certainty phrase", check=between(0, 1))
    packing: bool = setting(True, help="pack examples")
    checkpoints: tuple[int, ...] = setting((), help="example counts")
    filters: dict | None = setting(None, help="filter overrides")
    max_model_len: int | None = setting(None, help="context length")


def parse(*argv: str) -> ExampleSettings:
    parser = argparse.ArgumentParser()
    ExampleSettings.add_arguments(parser)
    return ExampleSettings.from_args(parser.parse_args(list(argv)))


def test_flags_fill_fields_and_defaults_apply():
    s = parse("--k-max", "2", "--alpha", "16/21", "--no-packing", "--checkpoints", "8000,16000",
              "--filters", '{"ngram_repeat_share": 0.6}')
    assert s.k_max == 2 and s.alpha == Fraction(16, 21) and s.packing is False
    assert s.checkpoints == (8000, 16000) and s.filters == {"ngram_repeat_share": 0.6}
    assert (s.strategy, s.timeout, s.certainty_prob, s.max_model_len) == ("highdiv", 5.0, 0.0, None)


def test_settings_json_is_overridden_by_flags():
    s = parse("--settings", '{"k_max": 4, "strategy": "lowdiv", "timeout": 2}', "--k-max", "1")
    assert (s.k_max, s.strategy, s.timeout) == (1, "lowdiv", 2.0)
    assert isinstance(s.timeout, float)


def test_to_dict_round_trips_through_json():
    s = parse("--k-max", "2", "--alpha", "0.1", "--checkpoints", "3")
    record = s.to_dict()
    assert record["alpha"] == "1/10" and record["checkpoints"] == [3]
    assert parse("--settings", s.to_json()) == s


@pytest.mark.parametrize("argv, message", [
    ((), "--settings: missing required setting(s) ['--k-max']"),
    (("--k-max", "-1"), "--k-max: must be at least 0, got -1"),
    (("--k-max", "1", "--timeout", "0"), "--timeout: must be positive, got 0.0"),
    (("--k-max", "1", "--certainty-prob", "1.5"), "--certainty-prob: must be within [0, 1], got 1.5"),
    (("--settings", '{"k_max": 1, "strategy": "best"}'),
     "--strategy: expected one of ['highdiv', 'lowdiv'], got 'best'"),
    (("--settings", '{"k_max": 1, "colour": 3}'), "--settings: unknown setting(s) ['colour']"),
    (("--settings", '{"k_max": "two"}'), "--k-max: expected an integer, got 'two'"),
    (("--settings", '{"k_max": true}'), "--k-max: expected an integer, got True"),
    (("--settings", '{"k_max": 1, "packing": "yes"}'), "--packing: expected true or false, got 'yes'"),
    (("--settings", "[1]"), "--settings: expected a JSON object, got list"),
    (("--settings", "{k_max: 1}"), "--settings: malformed JSON (Expecting property name enclosed in double quotes"),
    (("--k-max", "1", "--alpha", "x/y"), "--alpha: Invalid literal for Fraction: 'x/y'"),
    (("--k-max", "1", "--checkpoints", "8000,a"), "--checkpoints: expected a list of int, got 'a'"),
])
def test_bad_values_name_the_flag(argv, message):
    with pytest.raises(InputError) as caught:
        parse(*argv)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_direct_construction_is_checked_too():
    with pytest.raises(InputError, match=r"^--k-max: must be at least 0, got -3$"):
        ExampleSettings(k_max=-3)


def test_pick_takes_only_fields_later_mappings_winning():
    picked = ExampleSettings.pick({"k_max": 1, "label": "TF", "timeout": 3}, {"timeout": 4, "model": "m"})
    assert picked == {"k_max": 1, "timeout": 4}


def test_help_shows_defaults_and_required():
    parser = argparse.ArgumentParser()
    ExampleSettings.add_arguments(parser)
    text = parser.format_help()
    assert "maximum fused errors (required)" in text
    assert "seconds per step (default: 5.0)" in text


def test_mutable_defaults_are_refused():
    with pytest.raises(TypeError, match="mutable defaults"):
        setting([], help="x")


@dataclass(frozen=True)
class RunSettings(Settings):
    timeout: float = setting(5.0, help="seconds per step")
    workers: int = setting(2, help="processes", affects_output=False)


def test_provenance_leaves_out_settings_that_cannot_change_an_artifact():
    assert RunSettings(workers=8).provenance() == {"timeout": 5.0}
    assert RunSettings(workers=8).to_dict() == {"timeout": 5.0, "workers": 8}
