"""cnn_jax.sweep.stats against independent truth: hand-computed intervals, published examples."""

from __future__ import annotations

import math

import pytest

from cnn_jax.sweep.stats import mean_ci


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
