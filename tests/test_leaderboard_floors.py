"""Floors on the leaderboard: a block of their own, kept out of ranks and significance; methods
worse than the `mean` floor flagged and counted; cells within the best's seed spread marked and
tasks counted as resolved; the summary says when Friedman finds no significant difference."""
from __future__ import annotations

import numpy as np

from harness.leaderboard import build_leaderboard, write_leaderboard
from tests.test_leaderboard import PDE, frame, row


def _floor(task, method, value, seed=0):
    return row(task, method, value, seed=seed, role="floor")


def _rows(values, floors, seeds=(0, 1), jitter=0.001):
    rows = []
    for m, per_task in values.items():
        for t, v in zip(PDE, per_task):
            rows += [row(t, m, v + jitter * s, seed=s, role="method") for s in seeds]
    for m, per_task in floors.items():
        for t, v in zip(PDE, per_task):
            rows += [_floor(t, m, v, seed=s) for s in seeds]
    return frame(rows)


def test_floors_are_shown_apart_and_never_ranked():
    df = _rows({"a": [0.1] * 8, "b": [0.2] * 8}, {"mean": [0.5] * 8, "ridge": [0.05] * 8})
    lb = build_leaderboard(df, "real")
    assert lb.method_keys == ["a", "b"]                 # ridge beats both, yet is not ranked
    assert [f.key for f in lb.floors] == ["mean", "ridge"]
    assert lb.cell("ridge", "darcy").rank is None and lb.cell("ridge", "darcy").mean == 0.05
    assert lb.cell("a", "darcy").rank == 1
    assert set(lb.significance.methods) == {"a", "b"}
    md = lb.to_markdown()
    assert "floors (reference predictors, not ranked)" in md and "| ridge | 0.05 ± 0 |" in md
    csv = lb.to_frame().set_index("method")
    assert csv.loc["ridge", "kind"] == "floor" and csv.loc["a", "kind"] == "ranked"


def test_methods_worse_than_the_mean_floor_are_flagged_and_counted():
    # b is worse than the mean field on darcy and shallow-water only
    b = [0.1] * 8
    b[5], b[6] = 0.6, 0.9
    df = _rows({"a": [0.1] * 8, "b": b}, {"mean": [0.5] * 8})
    lb = build_leaderboard(df, "real")
    assert lb.cell("b", "darcy").below_floor and lb.cell("b", "shallow-water").below_floor
    assert not lb.cell("b", "advection").below_floor and not lb.cell("a", "darcy").below_floor
    assert lb.method("b").n_below_floor == 2 and lb.method("a").n_below_floor == 0
    assert "Below the mean-field floor: b on 2 tasks." in lb.summary_lines()
    assert "| 2 |" in lb.to_markdown().split("| b |")[1].split("\n")[0] + "|"
    assert "0.601 ± 0.000707 (2) †" in lb.to_markdown()


def test_a_direction_max_task_flags_lower_values():
    df = frame([row("t", "a", 0.7, direction="max", role="method"),
                row("t", "b", 0.4, direction="max", role="method"),
                _floor("t", "mean", 0.5) | {"direction": "max"}])
    lb = build_leaderboard(df, "real")
    assert lb.cell("b", "t").below_floor and not lb.cell("a", "t").below_floor


def test_resolution_uses_the_seed_spread():
    rows = []
    # darcy: a clearly best (tiny spread); advection: a and b overlap
    for s, (da, db) in enumerate([(0.10, 0.30), (0.11, 0.31), (0.12, 0.29)]):
        rows += [row("darcy", "a", da, seed=s), row("darcy", "b", db, seed=s)]
    for s, (aa, ab) in enumerate([(0.10, 0.12), (0.20, 0.13), (0.15, 0.25)]):
        rows += [row("advection", "a", aa, seed=s), row("advection", "b", ab, seed=s)]
    lb = build_leaderboard(frame(rows), "real")
    assert lb.resolved == {"advection": False, "darcy": True}
    assert not lb.cell("b", "darcy").within_spread
    assert lb.cell("b", "advection").within_spread
    assert "Resolved tasks: 1 of 2" in " ".join(lb.summary_lines())
    assert "(2) ≈" in lb.to_markdown()


def test_summary_states_no_significant_difference():
    rng = np.random.default_rng(0)
    vals = {m: list(rng.uniform(0.1, 0.2, size=8)) for m in "abc"}
    lb = build_leaderboard(_rows(vals, {"mean": [0.9] * 8}, seeds=(0,)), "real")
    assert lb.significance.ran and not lb.significance.significant
    line = [x for x in lb.summary_lines() if x.startswith("Friedman")][0]
    assert "no significant difference between the methods at α = 0.05" in line


def test_every_writer_carries_the_floor_block(tmp_path):
    df = _rows({"a": [0.1] * 8, "b": [0.7] * 8}, {"mean": [0.5] * 8, "ridge": [0.05] * 8})
    paths = write_leaderboard(df, tmp_path)
    for name in ("leaderboard.md", "leaderboard.html", "leaderboard.tex"):
        text = paths[name].read_text()
        assert "floors (reference predictors, not ranked)" in text, name
        assert "ridge" in text
    assert "Below the mean-field floor: b on 8 tasks." in paths["leaderboard.html"].read_text()
