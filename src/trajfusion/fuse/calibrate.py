"""Alpha calibration: the smallest alpha whose mean number of fused errors reaches a target.

The mean is a step function of alpha with its steps at known breakpoints
(``error_breakpoints``), so the search is exact and needs no fusion run.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from trajfusion.fuse.inputs import validate_verified
from trajfusion.fuse.selection import problem_statistics
from trajfusion.fuse.settings import CalibrateSettings, format_alpha, parse_alpha
from trajfusion.io import InputError, read_json_file


@dataclass(frozen=True)
class AlphaCalibration:
    alpha: Fraction  # smallest alpha whose mean #Err reaches the target
    alpha_next: Fraction | None  # where the mean steps up next (alpha stays valid below it)
    achieved_mean_errors: Fraction
    mean_errors_below: Fraction  # attainable mean just below alpha
    mean_errors_next: Fraction | None
    max_mean_errors: Fraction
    problems: int


def error_breakpoints(stats: pd.DataFrame, k_max: int) -> list[tuple[Fraction, int]]:
    """(alpha, how many problems gain one fused error there), sorted by alpha.

    A problem with c = r*u fuses min(k_max, |Y−|, floor(alpha*c)) errors, which steps up
    by one at alpha = m/c for m = 1..min(k_max, |Y−|). The count is the same for every
    strategy: strategies choose which errors, not how many."""
    gains: Counter = Counter()
    combos = stats.groupby(["n_incorrect", "K", "u"]).size()
    for (n_inc, k, u), count in combos.items():
        if n_inc == 0:
            continue
        c = Fraction(int(n_inc) * int(u), int(k))
        for m in range(1, min(k_max, int(n_inc)) + 1):
            gains[m / c] += int(count)
    return sorted(gains.items())


def calibrate(meta: pd.DataFrame, settings: CalibrateSettings, source: str = "<table>") -> AlphaCalibration:
    """The smallest alpha whose mean #Err over kept problems is >= the target (exact)."""
    k_max, target = settings.k_max, settings.target_errors
    stats, _ = problem_statistics(meta)
    n = len(stats)
    if n == 0:
        raise InputError(f"{source}: no problem has a correct trajectory; nothing to calibrate")
    points = error_breakpoints(stats, k_max)
    alphas = [alpha for alpha, _ in points]
    totals = np.cumsum([gain for _, gain in points]).tolist()
    needed = math.ceil(target * n)
    maximum = Fraction(totals[-1] if totals else 0, n)
    if not totals or totals[-1] < needed:
        raise InputError(f"{source}: target mean #Err {float(target):g} is unattainable with k_max={k_max}; "
                         f"the maximum is {float(maximum):.6g} over {n} problems")
    i = next(i for i, total in enumerate(totals) if total >= needed)
    return AlphaCalibration(
        alpha=alphas[i], alpha_next=alphas[i + 1] if i + 1 < len(alphas) else None,
        achieved_mean_errors=Fraction(totals[i], n),
        mean_errors_below=Fraction(totals[i - 1] if i else 0, n),
        mean_errors_next=Fraction(totals[i + 1], n) if i + 1 < len(totals) else None,
        max_mean_errors=maximum, problems=n)


def calibrate_alpha(verified_df: pd.DataFrame, k_max: int, target_mean_errors,
                    strategy: str = "highdiv") -> Fraction:
    """Smallest alpha at which the mean number of fused errors reaches the target."""
    settings = CalibrateSettings(k_max=k_max, target_errors=target_mean_errors, strategy=strategy)
    return calibrate(validate_verified(verified_df), settings).alpha


def calibration_record(result: AlphaCalibration, settings: CalibrateSettings) -> dict:
    def number(value):
        return None if value is None else float(value)

    return {"alpha": format_alpha(result.alpha),
            "alpha_next": None if result.alpha_next is None else format_alpha(result.alpha_next),
            "achieved_mean_errors": number(result.achieved_mean_errors),
            "mean_errors_below": number(result.mean_errors_below),
            "mean_errors_next": number(result.mean_errors_next),
            "max_mean_errors": number(result.max_mean_errors),
            "target": float(settings.target_errors), "k_max": settings.k_max, "strategy": settings.strategy,
            "problems": result.problems}


def read_alpha_file(path: str | Path) -> Fraction:
    data = read_json_file(path, "alpha file")
    if not isinstance(data, dict) or "alpha" not in data:
        raise InputError(f"{path}: missing field 'alpha'")
    return parse_alpha(data["alpha"], f"{path}: field 'alpha'")
