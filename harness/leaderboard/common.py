"""Names the leaderboard builder and its writers share: cell statuses, data-source order, and
how a published reference value is looked up for a column."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.leaderboard.model import TaskColumn
    from harness.leaderboard.reference import ReferenceRow

#: display order of data sources; others follow alphabetically
SOURCE_ORDER = ("real", "synthetic")
#: label for rows whose ``data_source`` is NA
UNKNOWN_SOURCE = "unknown"

OK, FAILED, MISSING = "ok", "failed", "missing"


def reference_value(row: "ReferenceRow", col: "TaskColumn") -> str | None:
    """The published string for a column, if the reference is in the column's metric."""
    if col.metric.name != row.metric_for(col.task) or (col.suite and col.suite != row.suite):
        return None
    return row.value(col.task)
