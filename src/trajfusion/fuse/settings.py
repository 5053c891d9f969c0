"""A fusion's settings (``FuseSettings``) and the checks and exact alpha text they rely on."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from trajfusion.contracts import STRATEGIES
from trajfusion.io import InputError
from trajfusion.settings import Settings, between, setting


def alpha_value(value) -> Fraction:
    """alpha as an exact positive Fraction: floats go through str() so 0.1 means 1/10.
    Raises ValueError saying what is wrong (without naming where the value came from)."""
    if isinstance(value, Fraction):
        alpha = value
    else:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"alpha must be a number or a decimal/fraction string, got {value!r}")
        try:
            alpha = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"alpha {value!r} is not a finite decimal or fraction") from None
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {format_alpha(alpha)}")
    return alpha


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


def check_k_max(k_max) -> int:
    """k_max outside a FuseSettings (calibrate-alpha): the same rule and message."""
    return FuseSettings(k_max=k_max, alpha=1).k_max


@dataclass(frozen=True)
class FuseSettings(Settings):
    k_max: int = setting(help="maximum fused errors; 0 = vanilla RFT", check=_non_negative_integer)
    alpha: Fraction | None = setting(None, help="diversity sensitivity, a decimal or fraction (e.g. 0.5, 16/21); "
                                     "required when k_max > 0", parse=alpha_value)
    strategy: str = setting("highdiv", help="which incorrect answer groups are fused first", choices=STRATEGIES)
    seed: int = setting(0, help="seed of y*, the fused errors and their phrases")
    certainty_prob: float = setting(0.0, help="probability of a certainty phrase after the success phrase",
                                    check=between(0, 1))

    def __post_init__(self):
        super().__post_init__()
        if self.alpha is None and self.k_max > 0:
            raise InputError("--alpha: required when --k-max > 0 (give --alpha or --alpha-file)")

    @property
    def alpha_text(self) -> str | None:
        return None if self.alpha is None else format_alpha(self.alpha)


def check_strategy(strategy: str) -> str:
    return FuseSettings(k_max=0, strategy=strategy).strategy
