"""Accuracy against cost: the configurations of a sweep that no other one beats on both.

A configuration is on the front of a cost (parameters, multiply-adds, or throughput) when no
other finished configuration has at least its mean validation accuracy at no more cost (at no
less throughput), better in one of the two. Chosen by validation accuracy like every ranking
of the reports; neighbours on a front may still be within noise of each other (the report's
statistics section says which).
"""

from __future__ import annotations

from typing import Any

ACCURACY = "best_val_accuracy_mean"
COSTS = {  # summary column → (what it is, whether more of it is better)
    "params": ("parameters", False),
    "macs": ("multiply-adds per image", False),
    "images_per_second_mean": ("training images per second", True),
}


def cost_front(summary: list[dict[str, Any]], cost: str, accuracy: str = ACCURACY
               ) -> list[dict[str, Any]]:
    """The rows of `summary` (one per configuration) on the accuracy-versus-`cost` front,
    cheapest first; rows without both numbers are left out."""
    more_is_better = COSTS[cost][1]

    def expense(row: dict[str, Any]) -> float:
        return -row[cost] if more_is_better else row[cost]

    rows = [row for row in summary if row.get(cost) is not None
            and row.get(accuracy) is not None]

    def beaten(row: dict[str, Any]) -> bool:
        return any(expense(other) <= expense(row) and other[accuracy] >= row[accuracy]
                   and (expense(other) < expense(row) or other[accuracy] > row[accuracy])
                   for other in rows)

    return sorted((row for row in rows if not beaten(row)), key=expense)
