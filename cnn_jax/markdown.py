"""Markdown tables: the one writer behind every results, sweep, shape and benchmark table."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; a '|' inside a cell is escaped so that it cannot start a new column."""
    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])
