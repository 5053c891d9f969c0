"""Stage settings declared once, as frozen dataclasses (the TRL config pattern).

A stage declares its settings as a dataclass deriving from :class:`Settings`, each field made
with :func:`setting`: its default, help text, allowed values and check live in that one place.
From the dataclass come

- the command line: :meth:`Settings.add_arguments` adds one ``--flag`` per field and a
  ``--settings JSON`` argument holding any number of them (the rules pass the whole object
  this way; flags given beside it override its keys);
- validation: a bad value raises ``InputError`` naming the flag, what was expected and what
  was given, when the object is built, whichever way it was built;
- provenance: :meth:`Settings.provenance` (the dict of the settings that can change an
  artifact) is what artifacts record and hash.

Example::

    @dataclass(frozen=True)
    class StatsSettings(Settings):
        min_samples: int = setting(1, help="problems with fewer ok samples are dropped", check=at_least(1))

    StatsSettings.add_arguments(parser)          # --min-samples, --settings
    settings = StatsSettings.from_args(args)     # JSON < flags; checked
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from trajfusion.io import InputError, parse_json_object

Check = Callable[[Any], "str | None"]  # returns what is wrong with a value, or None


def setting(default: Any = dataclasses.MISSING, *, help: str, choices: tuple | None = None,
            check: Check | None = None, parse: Callable[[Any], Any] | None = None,
            affects_output: bool = True) -> Any:
    """A settings field. ``parse`` turns a flag's or JSON value into the field's type (e.g. a
    Fraction from "16/21") and raises ``ValueError`` (without the flag's name) on a bad one;
    ``check`` validates it. ``affects_output=False`` marks a setting that cannot change an
    artifact's bytes (worker count, progress bars): provenance leaves it out, so that the
    config hash does not depend on how the work is run."""
    metadata = {"help": help, "choices": choices, "check": check, "parse": parse, "affects_output": affects_output}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed in settings; use a tuple")
    return dataclasses.field(default=default, metadata=metadata)


# ---- checks -----------------------------------------------------------------------------

def at_least(low) -> Check:
    return lambda value: None if value >= low else f"must be at least {low}"


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


def between(low, high) -> Check:
    return lambda value: None if low <= value <= high else f"must be within [{low}, {high}]"


# ---- the base class ---------------------------------------------------------------------

class Settings:
    """Base of every stage's settings dataclass (subclasses are ``@dataclass(frozen=True)``)."""

    def __post_init__(self) -> None:
        hints = _type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(getattr(self, f.name), hints[f.name], f)
            object.__setattr__(self, f.name, value)

    # -- building ---------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict, source: str = "--settings"):
        """Settings from a mapping of field names; unknown and missing keys are errors."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"{source}: unknown setting(s) {unknown}; known: {sorted(names)}")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise InputError(f"{source}: missing required setting(s) {[flag_of(n) for n in missing]}")
        return cls(**values)

    @classmethod
    def pick(cls, *mappings: dict) -> dict:
        """The keys of ``mappings`` (later ones win) that are fields of ``cls``: builds the
        ``--settings`` object of a rule from config sections that also hold other keys."""
        names = {f.name for f in dataclasses.fields(cls)}
        picked = {}
        for mapping in mappings:
            picked.update({key: value for key, value in mapping.items() if key in names})
        return picked

    @classmethod
    def defaults(cls) -> dict:
        """Field name -> default, for the fields that have one."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    # -- command line -----------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field (absent flags keep the JSON's or the default value) and ``--settings``."""
        parser.add_argument("--settings", metavar="JSON", default=None,
                            help="settings as one JSON object; flags given as well override its keys")
        hints = _type_hints(cls)
        for f in dataclasses.fields(cls):
            parser.add_argument(flag_of(f.name), dest=f.name, default=argparse.SUPPRESS,
                                help=_help_text(f), **_argparse_kind(hints[f.name], f))

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        values = parse_json_object(args.settings, "--settings") if getattr(args, "settings", None) else {}
        for f in dataclasses.fields(cls):
            if hasattr(args, f.name):
                values[f.name] = getattr(args, f.name)
        return cls.from_dict(values)

    # -- provenance -------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def provenance(self) -> dict:
        """What an artifact records (and hashes): the settings that can change it."""
        record = self.to_dict()
        return {f.name: record[f.name] for f in dataclasses.fields(self) if f.metadata["affects_output"]}


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


# ---- helpers ----------------------------------------------------------------------------

def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _optional_inner(hint):
    """``X`` for ``X | None`` (or ``Optional[X]``), else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _coerce(value, hint, f: dataclasses.Field):
    """``value`` as the field's type, parsed and checked; InputError names the flag."""
    flag = flag_of(f.name)
    inner = _optional_inner(hint)
    if value is None:
        if inner is None:
            raise InputError(f"{flag}: a value is required, got None")
        return None
    base = inner if inner is not None else hint
    if isinstance(value, str) and _is_mapping(base):
        value = parse_json_object(value, flag)
    try:
        if f.metadata.get("parse"):
            value = f.metadata["parse"](value)
        else:
            value = _as_type(value, base)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{flag}: {exc}") from None
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise InputError(f"{flag}: expected one of {list(choices)}, got {value!r}")
    problem = f.metadata["check"](value) if f.metadata.get("check") else None
    if problem:
        raise InputError(f"{flag}: {problem}, got {_plain(value)!r}")
    return value


def _as_type(value, hint):
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if origin is tuple:
        (item,) = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {value!r}")
        return tuple(_as_type(_from_text(v, item), item) for v in value)
    if _is_mapping(hint):
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object, got {value!r}")
        return value
    return value


def _is_mapping(hint) -> bool:
    return hint is dict or typing.get_origin(hint) is dict


def _from_text(value, hint):
    """A list item given as text on the command line ("8000" for an int)."""
    if isinstance(value, str) and hint in (int, float):
        try:
            return hint(value.strip())
        except ValueError:
            raise TypeError(f"expected a list of {hint.__name__}, got {value!r}") from None
    return value


def _argparse_kind(hint, f: dataclasses.Field) -> dict:
    base = _optional_inner(hint) or hint
    if _is_mapping(base):
        return {"type": str, "metavar": "JSON"}  # parsed by _coerce, whose errors name the flag
    if f.metadata.get("parse"):
        return {"type": str}
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if base in (int, float, str):
        kind = {"type": base}
        if f.metadata.get("choices") is not None:
            kind["choices"] = f.metadata["choices"]
        return kind
    return {"type": str}  # tuples: comma-separated, parsed by _as_type


def _help_text(f: dataclasses.Field) -> str:
    text = f.metadata["help"]
    if f.default is dataclasses.MISSING:
        return f"{text} (required)"
    return f"{text} (default: {_plain(f.default)})".replace("%", "%%")


def _plain(value):
    """A JSON-ready form: Fractions as text ("16/21"), tuples as lists."""
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
