"""Markdown tables: the one writer behind every results, sweep, shape and benchmark table."""

from __future__ import annotations

import os
from collections.abc import Sequence

BEGIN, END = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"


def markdown_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; a '|' inside a cell is escaped so that it cannot start a new column."""
    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])


def write_section(path: str, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replaces the text between the markers `begin` and `end` in the file `path` (appends the
    marked block when they are absent): measured tables kept inside hand-written documents."""
    old = open(path).read() if os.path.exists(path) else ""
    block = f"{begin}\n{text}{end}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + block
    with open(path, "w") as out:
        out.write(new)
