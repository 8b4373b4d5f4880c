"""Progress of training: a tqdm bar over steps on a terminal, one plain line per epoch elsewhere.

A redirected log (a file, a pipe, a sweep trial's train.log) gets no bar but a line per epoch:

    epoch 2/4: train loss 0.0311, accuracy 99.03%; validation 98.97%, test 99.13%; 10.8 s,
    4,611 img/s
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm.auto import tqdm


class Progress:
    """Steps done / total; `update(step, **values)` moves the bar, `epoch(text)` reports an
    epoch: as the bar's last values on a terminal, as a line of `lines` elsewhere."""

    def __init__(self, total: int, initial: int = 0, *, enabled: bool = True,
                 desc: str = "train", stream: TextIO | None = None,
                 lines: TextIO | None = None):
        stream = stream or sys.stderr
        self.bar_shown = enabled and hasattr(stream, "isatty") and stream.isatty()
        self._lines = lines
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                         disable=not self.bar_shown, file=stream, mininterval=0.5)
        self._step = initial
        self._values: dict[str, Any] = {}

    def update(self, step: int, **values: Any) -> None:
        self._bar.update(step - self._step)
        self._step = step
        if values:
            self._values.update(
                {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in values.items()
                 if v is not None})
            self._bar.set_postfix(self._values, refresh=False)

    def epoch(self, step: int, text: str, **values: Any) -> None:
        """The end of an epoch: `values` on the bar, or the line `text`."""
        self.update(step, **values)
        if not self.bar_shown:
            print(text, file=self._lines or sys.stdout, flush=True)

    def close(self) -> None:
        self._bar.close()


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def plural(count: int, noun: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
