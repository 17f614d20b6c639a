"""The live progress view of a sweep: the task × method matrix, elapsed time and an estimate of
the remaining time from the trials finished so far.

On a terminal the status line is the last line and is rewritten in place (carriage return and
erase-line), so it stays current instead of scrolling; the matrix is printed again only when it
changes. When the output is not a terminal (a log file, CI) every update is a plain line.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Mapping, TextIO

_ERASE = "\r\x1b[2K"      # carriage return + erase the whole line (ANSI)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def eta_seconds(elapsed: float, finished: int, total: int) -> float | None:
    """Remaining time if the unfinished trials take as long on average as the finished ones
    (None before the first trial finishes)."""
    if finished <= 0 or total <= 0:
        return None
    return elapsed / finished * max(0, total - finished)


def finished_trials(states: Mapping[str, Mapping]) -> int:
    """Trials (search and final) that ended, summed over the cells' live states."""
    return sum(int(st.get("finished_trials", 0) or 0) for st in states.values())


class ProgressView:
    """Prints the progress matrix and a status line; see the module docstring.

    Args:
        total_trials: search trials plus final seeds of every cell run now.
        stream: where to print (default ``sys.stdout``).
        tty: rewrite the status line in place (default: whether ``stream`` is a terminal).
        clock: seconds since an arbitrary origin (tests pass a fake one).
    """

    def __init__(self, total_trials: int, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total = int(total_trials)
        # not kept when None: sys.stdout is looked up at each write, so the view (held by the
        # sweep's Tune callback, which Tune pickles) never holds an unpicklable stream
        self._stream = stream
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.clock = clock
        self.start = clock()
        self._matrix: str | None = None
        self._pending_line = False

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def status(self, finished: int) -> str:
        """``elapsed 3m05s | 12/40 trials finished | about 7m12s left``."""
        elapsed = self.clock() - self.start
        eta = eta_seconds(elapsed, finished, self.total)
        left = "remaining time unknown until a trial finishes" if eta is None else (
            f"about {format_duration(eta)} left")
        return (f"elapsed {format_duration(elapsed)} | {finished}/{self.total} trials finished | "
                f"{left}")

    def show(self, matrix: str, finished: int) -> None:
        """Print the matrix if it changed, then the status line."""
        out = self.stream
        if matrix != self._matrix:
            if self._pending_line:
                out.write(_ERASE)
            out.write("\n" + matrix + "\n")
            self._matrix = matrix
            self._pending_line = False
        if self.tty:
            out.write(_ERASE + self.status(finished))
            self._pending_line = True
        else:
            out.write(self.status(finished) + "\n")
        out.flush()

    def warn(self, text: str) -> None:
        """Print a warning line (e.g. a stalled trial) without breaking the status line."""
        out = self.stream
        out.write((_ERASE if self._pending_line else "") + text + "\n")
        self._pending_line = False
        out.flush()

    def close(self) -> None:
        """End the in-place status line so later output starts on a fresh line."""
        if self._pending_line:
            self.stream.write("\n")
            self.stream.flush()
            self._pending_line = False
