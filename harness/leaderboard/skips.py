"""Why a leaderboard cell has no runs: the method declares it cannot run the task.

A sweep never plans a cell whose method's ``supports(task)`` is False (``harness.sweep``'s
coverage), so such a cell has no rows; the leaderboard asks the method again to show it as
skipped with its reason instead of as missing. Methods are looked up lazily (importing them
loads torch), and only for cells without rows.
"""
from __future__ import annotations

from functools import lru_cache

#: ``Cell.run_status`` of a cell the method does not support
SKIPPED = "skipped"


@lru_cache(maxsize=None)
def _entries():
    from harness.methods.discovery import discover

    return discover()


def unsupported_reason(suite: str, task: str, method: str) -> str | None:
    """The method's reason for not running ``suite``/``task``, or None when it supports it, or
    when either is unknown here (a removed method or task stays "missing")."""
    from harness.suites import get_suite

    try:
        t = get_suite(suite)[task]
    except (KeyError, ValueError):
        return None
    entry = _entries().get(method)
    if entry is None or not entry.available:
        return None
    ok, why = entry.method.supports(t)
    return None if ok else (why or "not supported by the method")
