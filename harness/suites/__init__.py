"""Suites: named collections of tasks. ``get_suite(name)`` returns ``{task_name: Task}``."""
from __future__ import annotations

import difflib

from harness.suites.base import Task


def available_suites() -> dict[str, dict[str, Task]]:
    """Every suite this install knows, by name."""
    from harness.suites.nasbench360 import TASKS as NASBENCH360
    from harness.suites.pdebench import TASKS as PDEBENCH

    return {"pdebench": PDEBENCH, "nasbench360": NASBENCH360}


def get_suite(name: str) -> dict[str, Task]:
    """The tasks of suite ``name``; an unknown name raises with a suggestion."""
    suites = available_suites()
    if name not in suites:
        raise ValueError(f"unknown suite {name!r}{did_you_mean(name, suites)}; "
                         f"known suites: {', '.join(sorted(suites))}")
    return suites[name]


def select_tasks(suite: str, names: list[str] | str | None = None) -> list[Task]:
    """Tasks of a suite, in suite order, optionally restricted to ``names`` (a list or "a,b")."""
    tasks = get_suite(suite)
    if names is None or names == "" or names == []:
        return list(tasks.values())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in tasks]
    if unknown:
        bad = unknown[0]
        raise ValueError(f"unknown task {bad!r} in suite {suite!r}{did_you_mean(bad, tasks)}; "
                         f"tasks: {', '.join(tasks)}")
    return [tasks[n] for n in tasks if n in names]


def did_you_mean(name: str, options) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
