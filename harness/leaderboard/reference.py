"""Published numbers shown under a leaderboard as reference rows (never ranked, never counted).

The paper's PDEBench table (Table 1) and its NAS-Bench-360 table (Table 2,
:mod:`harness.leaderboard.reference_nb360`). Values are kept as the published *strings* (so
"0.050" stays "0.050"); a cell the source lost is ``None`` and shows as missing. A row may carry
the paper's *stated* average rank and #1/#2 counts, shown as published, never recomputed.

Provenance: RECRAFT paper (Tran et al.), Table 1, PDEBench nRMSE (lower is better), as
transcribed in ``docs/paper-tables.md`` ("Published PDEBench results"), which also says where
each value comes from:

- RECRAFT: all eight cells (Table 1 extraction, agrees with the wizwand aggregator).
- MoNA: Darcy, Diff-Sorp, Diff-React 1D from the Table 1 extraction; Advection from wizwand;
  the other four cells were lost.
- ORCA: second-hand (wizwand aggregator), uncertain whether these are exactly Table 1's cells;
  Burgers and Shallow-Water were lost.
- NFT and PARE: every cell lost (PARE has one value whose column is unknown), so they have no row.

These are the paper's *real-data* protocol (PDEBench files, 5 runs, RoBERTa-base / Swin-base);
they are not comparable with runs on synthetic data.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

PAPER_PROVENANCE = ("RECRAFT paper (Tran et al.) Table 1, PDEBench nRMSE, as transcribed in "
                    "docs/paper-tables.md; ORCA row second-hand (wizwand); lost cells "
                    "shown as missing")

#: the metric the published numbers are in
PAPER_METRIC = "nrmse"

# task name (harness.suites.pdebench) -> published string, None where the source lost the cell
_PAPER: dict[str, dict[str, str | None]] = {
    "RECRAFT": {
        "darcy": "0.079", "advection": "0.0078", "burgers": "0.0108",
        "diffusion-sorption": "0.0016", "shallow-water": "0.0054",
        "diffusion-reaction-2d": "0.817", "diffusion-reaction-1d": "0.0028",
        "navier-stokes-1d": "0.050",
    },
    "MoNA": {
        "darcy": "0.079", "advection": "0.0088", "burgers": None,
        "diffusion-sorption": "0.0016", "shallow-water": None,
        "diffusion-reaction-2d": None, "diffusion-reaction-1d": "0.0028",
        "navier-stokes-1d": None,
    },
    "ORCA": {
        "darcy": "0.081", "advection": "0.0098", "burgers": None,
        "diffusion-sorption": "0.0018", "shallow-water": None,
        "diffusion-reaction-2d": "0.82", "diffusion-reaction-1d": "0.0032",
        "navier-stokes-1d": "0.066",
    },
}


@dataclass(frozen=True)
class ReferenceRow:
    """One published row: a label, per-task published strings (None = lost) and provenance.

    ``metric`` is the metric of every value, or a task -> metric mapping when the table mixes
    metrics (NAS-Bench-360). ``stated_rank``/``stated_firsts``/``stated_seconds`` are the
    paper's own summary columns (strings as published; ``None``: not stated)."""

    label: str
    values: dict[str, str | None] = field(default_factory=dict)
    metric: str | Mapping[str, str] = PAPER_METRIC
    suite: str = "pdebench"
    provenance: str = PAPER_PROVENANCE
    stated_rank: str | None = None
    stated_firsts: str | None = None
    stated_seconds: str | None = None

    def value(self, task: str) -> str | None:
        return self.values.get(task)

    def metric_for(self, task: str) -> str:
        """The metric the published value of ``task`` is in."""
        if isinstance(self.metric, str):
            return self.metric
        return self.metric.get(task, "")

    @property
    def stated(self) -> bool:
        return self.stated_rank is not None

    def as_float(self, task: str) -> float:
        v = self.values.get(task)
        return float(v) if v is not None else float("nan")


def _table2_rows() -> list[ReferenceRow]:
    """The NAS-Bench-360 rows (paper Table 2), with the paper's stated ranks."""
    from harness.leaderboard import reference_nb360 as t2

    return [ReferenceRow(f"{name} (paper Table 2)", dict(t2.VALUES.get(name, {})),
                         metric=dict(t2.METRICS), suite="nasbench360", provenance=t2.PROVENANCE,
                         stated_rank=rank, stated_firsts=firsts, stated_seconds=seconds)
            for name, (rank, firsts, seconds) in t2.STATED.items()]


REFERENCES = {"paper": [ReferenceRow(f"{name} (paper)", dict(vals))
                        for name, vals in _PAPER.items()] + _table2_rows()}


def reference_rows(name: str = "paper", tasks: Iterable[str] | None = None) -> list[ReferenceRow]:
    """The reference rows called ``name``, restricted to ``tasks`` (task names) when given.

    A row with no published value on any of those tasks is dropped, unless it states a paper
    average rank over a table that includes one of those tasks (its cells then show as lost).
    """
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}")
    rows = REFERENCES[name]
    if tasks is None:
        return list(rows)
    keep = list(dict.fromkeys(tasks))
    out = []
    for row in rows:
        vals = {t: row.values.get(t) for t in keep if t in row.values}
        in_table = any(row.metric_for(t) for t in keep) if not isinstance(row.metric, str) else vals
        if any(v is not None for v in vals.values()) or (row.stated and in_table):
            out.append(replace(row, values=vals))
    return out
