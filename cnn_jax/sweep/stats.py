"""Statistics of a sweep's results (scipy.stats / statsmodels; nothing hand-written).

    mean_ci([0.97, 0.98, 0.975])   # (mean, low, high): the 95% t interval of the mean
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` and its Student-t confidence interval
    (mean ± t_{(1+c)/2, n−1} · s/√n). One value: (x, nan, nan); none: (nan, nan, nan)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    data = np.asarray([float(v) for v in values], dtype=float)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size == 1:
        return mean, math.nan, math.nan
    sem = float(sps.sem(data))
    if sem == 0.0:
        return mean, mean, mean
    low, high = sps.t.interval(confidence, data.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)
