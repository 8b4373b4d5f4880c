"""Statistics of a sweep's results (scipy.stats / statsmodels; nothing hand-written).

    mean_ci([0.97, 0.98, 0.975])   # (mean, low, high): the 95% t interval of the mean
    compare({"k3": {0: .97, 1: .98}, "k5": {0: .98, 1: .985}}, baseline="k3")
    anova(frame, "best_val_accuracy", ["k", "s"])   # main effects and interactions, eta²
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

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


ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 1024  # `seeds_needed` beyond this: None (no practical difference)
WILCOXON_MIN = 6  # below 6 pairs the exact two-sided signed-rank p cannot fall under 0.05


def std(values: Sequence[float]) -> float:
    """The sample standard deviation (n − 1); nan below two values."""
    data = np.asarray(values, dtype=float)
    return float(np.std(data, ddof=1)) if data.size > 1 else math.nan


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels `multipletests`), in the order given; a NaN (no test)
    stays NaN and does not count in the family."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.isfinite(p)
    if tested.any():
        out[tested] = multipletests(p[tested], method="holm")[1]
    return [float(v) for v in out]


def seeds_needed(differences: Sequence[float], alpha: float = ALPHA,
                 power: float = POWER) -> int | None:
    """Pairs (seeds) a paired t-test needs to detect the observed mean difference with `power`
    at level `alpha` (two-sided), with Cohen's d = mean/sd of `differences`
    (`statsmodels.stats.power.TTestPower`, solved for n with scipy's `brentq`); None when d
    cannot be estimated, is 0, or needs more than `MAX_SEEDS`."""
    from statsmodels.stats.power import TTestPower

    data = np.asarray(differences, dtype=float)
    if data.size < 2:
        return None
    spread = float(np.std(data, ddof=1))
    if spread == 0.0 or float(data.mean()) == 0.0:
        return None
    effect = abs(float(data.mean())) / spread
    analysis = TTestPower()

    def shortfall(nobs: float) -> float:
        # scipy's noncentral t gives NaN where the noncentrality d·√n is large, i.e. where the
        # power is 1 to machine precision
        value = float(analysis.power(effect_size=effect, nobs=nobs, alpha=alpha))
        return (1.0 if math.isnan(value) else value) - power

    if shortfall(2) >= 0:
        return 2
    low, high = 2.0, 4.0
    while shortfall(high) < 0:  # bracket the root, then solve
        low, high = high, 2 * high
        if high > MAX_SEEDS:
            return None
    from scipy.optimize import brentq

    return math.ceil(brentq(shortfall, low, high))


def paired(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Paired comparison of `a` − `b` (same seeds, same order): n, mean difference and its t
    interval, the paired t-test (t, df, p: `scipy.stats.ttest_rel`), the Wilcoxon signed-rank p
    where n ≥ `WILCOXON_MIN` and the differences are not all zero (else None), and the seeds
    needed to decide (`seeds_needed`)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.size} and {y.size}")
    differences = x - y
    mean, low, high = mean_ci(differences, confidence)
    out: dict[str, Any] = {"n": int(x.size), "diff": mean, "diff_low": low, "diff_high": high,
                           "t": math.nan, "df": int(x.size) - 1, "p": math.nan,
                           "p_wilcoxon": None, "seeds_needed": seeds_needed(differences)}
    if x.size >= 2:
        if float(np.ptp(differences)) < 1e-12:  # no spread (up to rounding): t is undefined
            out["p"] = 1.0 if differences[0] == 0 else 0.0
            out["t"] = 0.0 if differences[0] == 0 else math.copysign(math.inf, differences[0])
        else:
            test = sps.ttest_rel(x, y)
            out["t"], out["p"] = float(test.statistic), float(test.pvalue)
    if x.size >= WILCOXON_MIN and np.any(differences != 0):
        out["p_wilcoxon"] = float(sps.wilcoxon(x, y).pvalue)
    return out


def _common(first: dict[int, float], second: dict[int, float]) -> tuple[list[float], list[float]]:
    seeds = sorted(set(first) & set(second))
    return [first[s] for s in seeds], [second[s] for s in seeds]


def compare(by_config: dict[str, dict[int, float]], *, baseline: str | None = None,
            alpha: float = ALPHA) -> dict[str, dict[str, Any]]:
    """The statistics of each configuration from its score per seed ({config: {seed: score}},
    higher is better): n, mean, std, 95% CI; the best (highest mean); for each other one, the
    paired comparison on the seeds it shares with the best (`vs_best`) and with `baseline`
    (`vs_baseline`), each family Holm-corrected (`p_holm`); `tied`: True when not
    distinguishable from the best (Holm p ≥ alpha), None when it cannot be tested (fewer than
    2 common seeds), False when worse."""
    out: dict[str, dict[str, Any]] = {}
    for name, scores in by_config.items():
        values = list(scores.values())
        mean, low, high = mean_ci(values)
        out[name] = {"n": len(values), "mean": mean, "std": std(values), "ci_low": low,
                     "ci_high": high, "rank": None, "vs_best": None, "vs_baseline": None,
                     "tied": None}
    ranked = sorted((n for n in out if out[n]["n"]), key=lambda n: -out[n]["mean"])
    for rank, name in enumerate(ranked, start=1):
        out[name]["rank"] = rank
    if not ranked:
        return out
    best = ranked[0]
    out[best]["tied"] = True
    for family, reference in (("vs_best", best), ("vs_baseline", baseline)):
        if reference is None or reference not in by_config:
            continue
        names = [n for n in ranked if n != reference]
        for name in names:
            a, b = _common(by_config[name], by_config[reference])
            out[name][family] = {"reference": reference, **paired(a, b)} if a else None
        tests = [n for n in names if out[n][family] is not None]
        for name, p in zip(tests, holm([out[n][family]["p"] for n in tests]), strict=True):
            out[name][family]["p_holm"] = p
    for name in ranked[1:]:
        test = out[name]["vs_best"]
        if test is not None and math.isfinite(test.get("p_holm", math.nan)):
            out[name]["tied"] = bool(test["p_holm"] >= alpha)
    return out


def anova(frame: Any, response: str, factors: Sequence[str]) -> list[dict[str, Any]] | None:
    """Two-way ANOVA of `response` on the categorical `factors` (columns of the pandas `frame`;
    rows = trials, seeds as replicates): main effects and every two-way interaction
    (statsmodels `ols` + `anova_lm`, type II sums of squares). One row per term: term, df,
    sum_sq, eta_sq (sum_sq / total sum of squares), F, p; then the residual. Factors with one
    level are left out; interactions are left out when the replicates leave no residual degree
    of freedom for them or when a cell of the grid is empty (a configuration never trained, such
    as a window without a pool: the interaction is then not estimable). None when nothing can be
    tested."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    data = frame.dropna(subset=[response])
    used = [f for f in factors if data[f].nunique() > 1]
    if not used or len(data) < 3:
        return None
    names = {f: f"x{i}" for i, f in enumerate(used)}
    data = data.rename(columns=names).assign(y=data[response].astype(float))
    mains = [f"C({names[f]})" for f in used]
    pairs = [f"C({names[a]}):C({names[b]})" for i, a in enumerate(used) for b in used[i + 1:]]
    for terms in (mains + pairs, mains):
        try:
            ols = smf.ols("y ~ " + " + ".join(terms), data=data)
        except ValueError:
            continue
        if np.linalg.matrix_rank(ols.exog) < ols.exog.shape[1]:
            continue
        model = ols.fit()
        if model.df_resid < 1:
            continue
        table = sm.stats.anova_lm(model, typ=2)
        break
    else:
        return None
    total = float(table["sum_sq"].sum())
    back = {v: k for k, v in names.items()}
    rows = []
    for term, record in table.iterrows():
        label = "residual" if term == "Residual" else " × ".join(
            back[part[2:-1]] for part in term.split(":"))
        rows.append({"term": label, "df": float(record["df"]), "sum_sq": float(record["sum_sq"]),
                     "eta_sq": float(record["sum_sq"]) / total if total else math.nan,
                     "F": _finite(record["F"]), "p": _finite(record["PR(>F)"])})
    return rows


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
