"""A fusion's settings (``FuseSettings``), alpha calibration's (``CalibrateSettings``), and the
checks and exact number text they rely on."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from trajfusion.contracts import STRATEGIES
from trajfusion.io import InputError
from trajfusion.settings import Settings, between, setting


def exact_positive(value, name: str) -> Fraction:
    """``value`` as an exact positive Fraction: floats go through str() so 0.1 means 1/10.
    Raises ValueError saying what is wrong with ``name`` (without naming where it came from)."""
    if isinstance(value, Fraction):
        number = value
    else:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"{name} must be a number or a decimal/fraction string, got {value!r}")
        try:
            number = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name} {value!r} is not a finite decimal or fraction") from None
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {format_alpha(number)}")
    return number


def alpha_value(value) -> Fraction:
    return exact_positive(value, "alpha")


def target_value(value) -> Fraction:
    return exact_positive(value, "the target mean #Err")


def parse_alpha(value, source: str = "alpha") -> Fraction:
    """``alpha_value`` with errors as InputError naming ``source`` (a flag, a file's field)."""
    try:
        return alpha_value(value)
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None


def format_alpha(alpha: Fraction) -> str:
    """Exact text for a Fraction: a decimal when one exists (0.125), else 'p/q' (16/21)."""
    den = alpha.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{alpha.numerator}/{alpha.denominator}"
    places = max(twos, fives)
    scaled = abs(alpha.numerator) * 10**places // alpha.denominator
    sign = "-" if alpha < 0 else ""
    if places == 0:
        return f"{sign}{scaled}"
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{str(frac).zfill(places).rstrip('0')}"


def _non_negative_integer(value) -> str | None:
    return None if value >= 0 else "must be a non-negative integer"


def k_max_setting():
    return setting(help="maximum fused errors; 0 = vanilla RFT", check=_non_negative_integer)


def strategy_setting(help: str = "which incorrect answer groups are fused first"):
    return setting("highdiv", help=help, choices=STRATEGIES)


@dataclass(frozen=True)
class FuseSettings(Settings):
    k_max: int = k_max_setting()
    alpha: Fraction | None = setting(None, help="diversity sensitivity, a decimal or fraction (e.g. 0.5, 16/21); "
                                     "required when k_max > 0", parse=alpha_value)
    strategy: str = strategy_setting()
    seed: int = setting(0, help="seed of y*, the fused errors and their phrases")
    certainty_prob: float = setting(0.0, help="probability of a certainty phrase after the success phrase",
                                    check=between(0, 1))
    keep_final: bool = setting(False, help="put y*'s own final part (what a long-form teacher writes after its "
                               "</think>) between </think> and the answer line; errors' final parts are never kept")

    def __post_init__(self):
        super().__post_init__()
        if self.alpha is None and self.k_max > 0:
            raise InputError("--alpha: required when --k-max > 0 (give --alpha or --alpha-file)")

    @property
    def alpha_text(self) -> str | None:
        return None if self.alpha is None else format_alpha(self.alpha)


@dataclass(frozen=True, kw_only=True)
class CalibrateSettings(Settings):
    """``calibrate-alpha``: the k_max and strategy of the variant whose alpha is calibrated."""

    k_max: int = k_max_setting()
    target_errors: Fraction = setting(help="target mean fused errors per problem, a decimal or fraction",
                                      parse=target_value)
    strategy: str = strategy_setting("recorded only: the number of fused errors does not depend on it")
