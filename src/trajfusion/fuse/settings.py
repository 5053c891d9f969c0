"""A fusion's settings (``FuseSettings``) and the checks and exact alpha text they rely on."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from trajfusion.io import InputError

STRATEGIES = ("highdiv", "lowdiv")


def parse_alpha(value, source: str = "alpha") -> Fraction:
    """alpha as an exact Fraction: floats go through str() so 0.1 means 1/10."""
    if isinstance(value, Fraction):
        alpha = value
    else:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InputError(f"{source}: alpha must be a number or a decimal/fraction string, got {value!r}")
        try:
            alpha = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{source}: alpha {value!r} is not a finite decimal or fraction") from None
    if alpha <= 0:
        raise InputError(f"{source}: alpha must be > 0, got {format_alpha(alpha)}")
    return alpha


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


def check_k_max(k_max) -> int:
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 0:
        raise InputError(f"--k-max: must be a non-negative integer, got {k_max!r}")
    return int(k_max)


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InputError(f"--strategy: unknown strategy {strategy!r}; known: {list(STRATEGIES)}")
    return strategy


@dataclass(frozen=True)
class FuseSettings:
    k_max: int
    alpha: Fraction | None  # None only for k_max = 0 (vanilla RFT)
    strategy: str = "highdiv"
    seed: int = 0
    certainty_prob: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "k_max", check_k_max(self.k_max))
        check_strategy(self.strategy)
        if self.alpha is None:
            if self.k_max > 0:
                raise InputError("--alpha: required when --k-max > 0 (give --alpha or --alpha-file)")
        else:
            object.__setattr__(self, "alpha", parse_alpha(self.alpha))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InputError(f"--seed: must be an integer, got {self.seed!r}")
        if not (isinstance(self.certainty_prob, (int, float)) and 0.0 <= self.certainty_prob <= 1.0):
            raise InputError(f"--certainty-prob: must be within [0, 1], got {self.certainty_prob!r}")

    @property
    def alpha_text(self) -> str | None:
        return None if self.alpha is None else format_alpha(self.alpha)
