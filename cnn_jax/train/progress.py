"""A tqdm progress bar over training steps, with loss, accuracy and throughput."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


class Progress:
    """Steps done / total; `update(step, **values)` moves the bar and shows the latest values."""

    def __init__(self, total: int, initial: int = 0, *, enabled: bool = True, desc: str = "train"):
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                         disable=not enabled, file=sys.stderr, mininterval=0.5)
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

    def close(self) -> None:
        self._bar.close()
