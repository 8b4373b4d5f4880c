"""The sweep log: `workdir/sweep.log`, appended and flushed line by line, echoed to the console
without breaking the progress bars (`tqdm.write`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm.auto import tqdm


class SweepLog:
    def __init__(self, path: str | Path, *, echo: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo

    def write(self, text: str, *, console: bool = True) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a") as file:
            for line in text.splitlines() or [""]:
                file.write(f"{stamp}  {line}\n")
            file.flush()
        if self.echo and console:
            tqdm.write(text, file=sys.stdout)
