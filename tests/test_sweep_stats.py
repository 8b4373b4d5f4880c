"""cnn_jax.sweep.stats against independent truth: hand-computed intervals, published examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnn_jax.sweep.stats import anova, compare, holm, mean_ci, paired, seeds_needed


def test_mean_ci_is_the_t_interval_worked_by_hand():
    # [1, 2, 3, 4]: mean 2.5, s = sqrt(5/3) = 1.29099, s/sqrt(4) = 0.645497;
    # t_{0.975, 3} = 3.182446 (tables) → half width 2.054260.
    mean, low, high = mean_ci([1, 2, 3, 4])
    assert mean == 2.5
    assert low == pytest.approx(2.5 - 2.054260, abs=1e-5)
    assert high == pytest.approx(2.5 + 2.054260, abs=1e-5)
    # 90%: t_{0.95, 3} = 2.353363 → half width 1.519090
    assert mean_ci([1, 2, 3, 4], 0.90)[2] == pytest.approx(2.5 + 1.519090, abs=1e-5)


def test_mean_ci_of_one_value_has_no_interval():
    mean, low, high = mean_ci([0.97])
    assert mean == 0.97 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], 1.5)


# Student (1908), "The probable error of a mean", the sleep data (R's `sleep`): extra hours of
# sleep of 10 patients under two drugs. Paired t-test (R: t.test(extra ~ group, paired = TRUE)):
# t = -4.0621, df = 9, p-value = 0.002833.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_t_test_reproduces_students_sleep_data():
    result = paired(SLEEP_2, SLEEP_1)
    assert result["n"] == 10 and result["df"] == 9
    assert result["t"] == pytest.approx(4.0621, abs=1e-4)
    assert result["p"] == pytest.approx(0.002833, abs=1e-6)
    # R: mean difference 1.58, 95% CI 0.7001142 … 2.4598858
    assert result["diff"] == pytest.approx(1.58)
    assert result["diff_low"] == pytest.approx(0.7001142, abs=1e-6)
    assert result["diff_high"] == pytest.approx(2.4598858, abs=1e-6)
    # R: wilcox.test(..., paired = TRUE) on these data gives p = 0.009091 (normal approximation
    # with ties and a zero difference, corrected for continuity); scipy's default drops the zero
    # and ranks the 9 others: a p of the same order, below 0.05.
    assert result["p_wilcoxon"] is not None and result["p_wilcoxon"] < 0.05


def test_holm_on_three_p_values_worked_by_hand():
    # sorted 0.01, 0.03, 0.04 → ×3, ×2, ×1 = 0.03, 0.06, 0.04 → running max 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, float("nan"), 0.01]) == pytest.approx([0.5, float("nan"), 0.02],
                                                            nan_ok=True)


def test_seeds_needed_is_the_one_sample_t_power_of_cohen():
    # Cohen's d = 0.5, alpha 0.05 two-sided, power 0.8: n = 33.4 → 34 (G*Power, one-sample t)
    assert seeds_needed([-0.5, 0.5, 1.5]) == 34  # mean 0.5, sd 1.0
    assert seeds_needed([2.0, 2.1, 1.9]) == 2  # d = 20: two seeds already decide
    assert seeds_needed([0.1]) is None and seeds_needed([0.2, 0.2]) is None


def test_compare_ranks_by_mean_and_keeps_the_tied_ones():
    scores = {
        "a": {0: 0.90, 1: 0.91, 2: 0.92, 3: 0.93},
        "b": {0: 0.80, 1: 0.815, 2: 0.83, 3: 0.84},  # far below a on every seed
        "c": {0: 0.905, 1: 0.90, 2: 0.925, 3: 0.92},  # within noise of a
        "d": {7: 0.99},  # no seed in common with a: cannot be tested
    }
    out = compare(scores, baseline="b")
    assert [n for n in sorted(out, key=lambda n: out[n]["rank"])] == ["d", "a", "c", "b"]
    # d is ranked first on one seed but can be compared with nothing
    assert out["d"]["tied"] is True and out["a"]["vs_best"] is None and out["a"]["tied"] is None
    scores.pop("d")
    out = compare(scores, baseline="b")
    assert out["a"]["rank"] == 1 and out["a"]["tied"] is True
    assert out["c"]["tied"] is True and out["b"]["tied"] is False
    worse = paired(list(scores["b"].values()), list(scores["a"].values()))
    assert out["b"]["vs_best"]["p"] == pytest.approx(worse["p"])
    raw = [out[n]["vs_best"]["p"] for n in ("c", "b")]
    assert [out[n]["vs_best"]["p_holm"] for n in ("c", "b")] == pytest.approx(holm(raw))
    assert out["a"]["vs_baseline"]["diff"] == pytest.approx(0.915 - 0.82125, abs=1e-9)
    assert out["b"]["vs_baseline"] is None


# Montgomery, Design and Analysis of Experiments, Example 5.1 (battery life, material type ×
# temperature, 4 replicates). The book's ANOVA table: material SS 10,683.72, df 2, F 7.91,
# p 0.0020; temperature SS 39,118.72, df 2, F 28.97; interaction SS 9,613.78, df 4, F 3.56,
# p 0.0186; error SS 18,230.75, df 27; total 77,646.97.
BATTERY = {1: {15: [130, 155, 74, 180], 70: [34, 40, 80, 75], 125: [20, 70, 82, 58]},
           2: {15: [150, 188, 159, 126], 70: [136, 122, 106, 115], 125: [25, 70, 58, 45]},
           3: {15: [138, 110, 168, 160], 70: [174, 120, 150, 139], 125: [96, 104, 82, 60]}}


def test_anova_reproduces_montgomerys_battery_table():
    import pandas as pd

    frame = pd.DataFrame([{"material": m, "temperature": t, "life": v}
                          for m, by_t in BATTERY.items() for t, vs in by_t.items() for v in vs])
    table = {row["term"]: row for row in anova(frame, "life", ["material", "temperature"])}
    assert set(table) == {"material", "temperature", "material × temperature", "residual"}
    assert table["material"]["sum_sq"] == pytest.approx(10683.72, abs=0.01)
    assert table["material"]["F"] == pytest.approx(7.91, abs=0.005)
    assert table["material"]["p"] == pytest.approx(0.0020, abs=0.00005)
    assert table["temperature"]["F"] == pytest.approx(28.97, abs=0.005)
    assert table["material × temperature"]["df"] == 4
    assert table["material × temperature"]["p"] == pytest.approx(0.0186, abs=0.00005)
    assert table["residual"]["df"] == 27 and table["residual"]["p"] is None
    assert table["temperature"]["eta_sq"] == pytest.approx(39118.72 / 77646.97, abs=1e-5)


def test_anova_without_replicates_drops_the_interaction():
    import pandas as pd

    frame = pd.DataFrame([{"a": a, "b": b, "y": a + 2 * b + 0.1 * ((a * b) % 3)}
                          for a in range(3) for b in range(3)])
    terms = [row["term"] for row in anova(frame, "y", ["a", "b"])]
    assert terms == ["a", "b", "residual"]
    assert anova(frame.assign(c=1), "y", ["c"]) is None


def test_anova_with_an_empty_cell_fits_main_effects_only():
    """Montgomery's battery data without material 3 at 125°F: the interaction is not
    estimable, so the ANOVA keeps the main effects, whose type II F must match the residual sums
    of squares of least-squares fits computed here with numpy."""
    import pandas as pd

    frame = pd.DataFrame([{"material": m, "temperature": t, "life": v}
                          for m, by_t in BATTERY.items() for t, vs in by_t.items() for v in vs
                          if (m, t) != (3, 125)])
    table = {row["term"]: row for row in anova(frame, "life", ["material", "temperature"])}
    assert set(table) == {"material", "temperature", "residual"}

    def residual_ss(*factors):
        columns = [np.ones(len(frame))] + [
            (frame[f] == level).to_numpy(float) for f in factors
            for level in sorted(frame[f].unique())[1:]]
        design = np.stack(columns, axis=1)
        y = frame["life"].to_numpy(float)
        fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
        return float(((y - fitted) ** 2).sum()), len(y) - design.shape[1]

    full, df_full = residual_ss("material", "temperature")
    without, _ = residual_ss("temperature")
    assert table["residual"]["df"] == df_full
    assert table["material"]["sum_sq"] == pytest.approx(without - full, rel=1e-9)
    assert table["material"]["F"] == pytest.approx((without - full) / 2 / (full / df_full),
                                                   rel=1e-9)


# A fake sweep folder: k ∈ {3, 5} × pool ∈ {max, avg} × seeds 0-2, validation and test accuracy
# chosen so that ranking on test would pick the configuration validation ranks last.
FAKE = {  # group: (k, pool, [best val per seed], test accuracy at that epoch)
    "k3-pmax": (3, "max", [0.950, 0.952, 0.948], 0.990),
    "k3-pavg": (3, "avg", [0.960, 0.962, 0.961], 0.960),
    "k5-pmax": (5, "max", [0.970, 0.975, 0.972], 0.920),
    "k5-pavg": (5, "avg", [0.969, 0.976, 0.970], 0.930),
}


def fake_sweep(workdir, baseline="k3-pmax"):
    from cnn_jax.train.logs import atomic_write_json

    keys = ["model.layers[0].kernel", "model.layers[1].pool_type"]
    trials = []
    for group, (kernel, pool, vals, test) in FAKE.items():
        for seed, val in enumerate(vals):
            trial = f"{group}-seed{seed}"
            trials.append({"id": trial, "group": group, "seed": seed,
                           "values": dict(zip(keys, (kernel, pool), strict=True))})
            folder = workdir / "trials" / trial
            folder.mkdir(parents=True)
            atomic_write_json(folder / "trial.json", {"id": trial, "params": 1000 + kernel,
                                                      "macs": 5000 * kernel, "runs": []})
            atomic_write_json(folder / "status.json", {"status": "done"})
            atomic_write_json(folder / "results.json", {
                "status": "done", "test_accuracy_at_best_val": test, "best_val_accuracy": val,
                "epochs": 3, "best_epoch": 2, "train_time_s": 1.0, "images_per_second": 10.0})
    atomic_write_json(workdir / "sweep.json", {
        "name": "fake", "seeds": [0, 1, 2], "trials": trials,
        "dimensions": [{"name": "k", "keys": keys[:1], "labels": ["k"], "values": [[3], [5]]},
                       {"name": "p", "keys": keys[1:], "labels": ["p"],
                        "values": [["max"], ["avg"]]}],
        "sweep_config": {"report_baseline": baseline}})
    return workdir


def test_report_of_a_fake_sweep_ranks_by_validation_with_intervals_and_tests(tmp_path):
    from conftest import read_csv

    from cnn_jax.sweep import build_report

    report = build_report(fake_sweep(tmp_path)).read_text()
    summary = read_csv(tmp_path / "summary.csv")
    assert [r["group"] for r in summary] == ["k5-pmax", "k5-pavg", "k3-pavg", "k3-pmax"]
    best = summary[0]
    # k5-pmax: mean 0.972333, s = 0.0025166, t_{0.975,2} = 4.302653 → half width 0.0062515
    assert float(best["best_val_accuracy_mean"]) == pytest.approx(0.9723333, abs=1e-6)
    assert float(best["best_val_accuracy_ci_high"]) - float(
        best["best_val_accuracy_mean"]) == pytest.approx(0.0062515, abs=1e-6)
    assert float(best["test_accuracy_mean"]) == pytest.approx(0.92)
    assert best["test_accuracy_ci_low"] == best["test_accuracy_mean"]  # no spread over seeds
    by_group = {r["group"]: r for r in summary}
    assert by_group["k5-pavg"]["tied_best"] == "True"
    assert by_group["k3-pmax"]["tied_best"] == "False"
    # k3-pmax − k5-pmax per seed: −0.020, −0.023, −0.024 → mean −0.022333
    assert float(by_group["k3-pmax"]["diff_vs_best"]) == pytest.approx(-0.0223333, abs=1e-6)
    assert by_group["k3-pmax"]["diff_vs_baseline"] == ""
    assert float(by_group["k5-pmax"]["diff_vs_baseline"]) == pytest.approx(0.0223333, abs=1e-6)
    ranked = report.split("## Configurations, best first")[1].split("\n## ")[0]
    first = [line for line in ranked.splitlines() if line.startswith("| 1 ")][0]
    assert "k5-pmax" in first and "97.23 ± 0.25" in first and "96.61 … 97.86" in first
    assert "| 2 ≈ | k5-pavg" in ranked
    section = report.split("## Statistics")[1].split("\n## ")[0]
    assert "**Best by validation accuracy: k5-pmax.**" in section
    assert "Not distinguishable from it (Holm p ≥ 0.05): k5-pmax, k5-pavg" in section
    assert "### Against the baseline (k3-pmax" in section
    assert "undecided: 3 seeds; ~" in section  # k5-pavg: a small difference, few seeds
    anova_rows = {line.split("|")[1].strip(): line for line in
                  section.split("ANOVA")[1].splitlines() if line.startswith("| ")}
    assert {"k", "p", "k × p", "residual"} <= set(anova_rows)


def test_report_names_a_baseline_that_did_not_run(tmp_path):
    from cnn_jax.sweep import build_report

    report = build_report(fake_sweep(tmp_path, baseline="k9-pmax")).read_text()
    assert "The baseline 'k9-pmax' has no finished trial in this sweep." in report


def test_a_categorical_axis_is_plotted_as_points_with_intervals_not_a_line(tmp_path):
    from cnn_jax.sweep.plots import _dimension_figure, dimensions_of
    from cnn_jax.sweep.results import write_results

    manifest, _, summary = write_results(fake_sweep(tmp_path))
    k, p = dimensions_of(manifest)
    ax = _dimension_figure(p, [k], summary).axes[0]
    series = [container.lines[0] for container in ax.containers]
    assert len(series) == 2 and all(line.get_linestyle() == "None" for line in series)
    # the k = 3 and k = 5 points of a category sit side by side, not on one x
    xs = sorted(x for line in series for x in line.get_xdata())
    assert xs[0] < 0 < xs[1] < 1 and len(set(xs)) == 4
    assert "95% CI" in ax.get_title()
    numeric = _dimension_figure(k, [p], summary).axes[0]
    assert [c.lines[0].get_linestyle() for c in numeric.containers] == ["-", "-"]


def test_a_sweep_without_a_finished_trial_makes_no_plots(tmp_path):
    from cnn_jax.sweep.plots import make_plots

    manifest = {"dimensions": [{"name": "k", "keys": ["k"], "labels": ["k"],
                                "values": [[9], [11]]}], "seeds": [0]}
    rows = [{"group": f"k{k}", "k": k, "seeds": 1, "done": 0, "test_accuracy_mean": None,
             "test_accuracy_std": None, "reason": "conv2 does not fit", "params": None,
             "macs": None} for k in (9, 11)]
    assert make_plots(manifest, rows, tmp_path / "plots") == []
    assert not (tmp_path / "plots").exists()


def test_cost_front_keeps_what_nothing_beats_on_both_worked_by_hand():
    from cnn_jax.sweep.front import cost_front

    rows = [{"group": group, "params": params, "images_per_second_mean": rate,
             "best_val_accuracy_mean": accuracy}
            for group, params, rate, accuracy in [
                ("A", 100, 900, 0.95), ("B", 200, 500, 0.97), ("C", 150, 1000, 0.94),
                ("D", 200, 700, 0.96), ("E", 300, 100, 0.97), ("F", None, None, 0.99)]]
    # C: A is cheaper and better; D: B costs the same and is better; E: B is as good, cheaper
    assert [r["group"] for r in cost_front(rows, "params")] == ["A", "B"]
    # throughput: more is better; only E is slower than one at least as accurate (B)
    assert [r["group"] for r in cost_front(rows, "images_per_second_mean")] == ["C", "A", "D",
                                                                                "B"]


def test_report_lists_the_accuracy_against_cost_front(tmp_path):
    from cnn_jax.sweep import build_report

    report = build_report(fake_sweep(tmp_path)).read_text()
    section = report.split("## Accuracy against cost")[1].split("\n## ")[0]
    by_params = section.split("Against parameters")[1].split("Against")[0]
    groups = [line.split("|")[1].strip() for line in by_params.splitlines()
              if line.startswith("| k")]
    assert groups == ["k3-pavg", "k5-pmax"]  # 1,003 and 1,005 parameters
