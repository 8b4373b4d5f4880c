"""Small helpers for research tables: mean ± std over seeds, percentages, Markdown."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample std) of finite values; std 0 for a single value; (nan, nan) for none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def percent(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.{digits}f}%"


def percent_mean_std(values: Sequence[float], digits: int = 2) -> str:
    """e.g. '98.71% ± 0.05' (std in percentage points), or '98.71%' for one value."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    finite = [v for v in values if v is not None and math.isfinite(v)]
    text = percent(mean, digits)
    return text if len(finite) < 2 else f"{text} ± {100 * std:.{digits}f}"

