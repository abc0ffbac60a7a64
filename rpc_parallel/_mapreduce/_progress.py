"""Progress of a map: a tqdm bar on stderr, a callback of the caller's, or nothing.

tqdm, because it is small (no dependencies), draws done/total, rate and ETA (done and rate alone
when the input has no length), and turns itself off when stderr is not a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal

from tqdm import tqdm

__all__ = ("Progress", "ProgressArg")

# True: a bar when stderr is a terminal; "always": a bar anyway; a callable: called with (done, total)
ProgressArg = bool | Literal["always"] | Callable[[int, int | None], Any]


class Progress:
    """Told how many items are done (``advance``); ``close`` at the end."""

    def __init__(self, total: int | None, bar: tqdm[Any] | None = None,
                 callback: Callable[[int, int | None], Any] | None = None) -> None:
        self.total = total
        self.done = 0
        self._bar = bar
        self._callback = callback

    @classmethod
    def of(cls, progress: ProgressArg, total: int | None) -> Progress:
        """The progress ``progress=`` asks for, of an input of ``total`` items (None: unknown)."""
        if progress is False or progress is None:
            return cls(total)
        if progress is True or progress == "always":
            bar = tqdm(total=total, unit="item", file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
                       disable=None if progress is True else False)
            return cls(total, bar=bar)
        if callable(progress):
            return cls(total, callback=progress)
        raise TypeError(f"progress= takes True, False, 'always' or a callable of (done, total), not {progress!r}")

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
