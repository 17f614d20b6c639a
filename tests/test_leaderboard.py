"""Leaderboards: aggregation, display-precision ties, direction, missing/failed cells, summary
columns, data sources, significance gating, reference rows, writers and the CLI."""
from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.leaderboard import (build_leaderboard, build_leaderboards, leaderboard_markdown,
                                 write_leaderboard)
from harness.leaderboard.__main__ import main as cli_main
from harness.results import append_rows, normalise
from harness.suites.base import Metric

PDE = ["advection", "burgers", "diffusion-reaction-1d", "diffusion-sorption",
       "navier-stokes-1d", "darcy", "shallow-water", "diffusion-reaction-2d"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def row(task, method, value, seed=0, *, status="ok", source="real", suite="pdebench",
        direction="min", metric="nrmse", phase="final", split="test", **extra):
    return dict(sweep="s", suite=suite, task=task, task_version="tv1", method=method,
                method_version="mv1", phase=phase, split=split, seed=seed, metric=metric,
                value=value, direction=direction, status=status, data_source=source,
                trial_id=f"seed-{seed}", **extra)


def frame(rows):
    return normalise(rows)


def grid(values: dict[str, list[float]], tasks=PDE, **kw):
    """{method: [value per task]} -> one ok seed per cell (NaN = no row)."""
    return [row(t, m, v, **kw) for m, vs in values.items() for t, v in zip(tasks, vs)
            if not (isinstance(v, float) and math.isnan(v))]


# ---- ranks ----------------------------------------------------------------------------------

def test_ties_at_display_precision_share_the_best_rank():
    df = frame([row("t", "a", 0.0791), row("t", "b", 0.0789), row("t", "c", 0.0812)])
    lb = build_leaderboard(df, "real", metrics={"t": Metric(sigfigs=2)})
    assert [lb.cell(m, "t").display for m in "abc"] == ["0.079", "0.079", "0.081"]
    assert [lb.cell(m, "t").rank for m in "abc"] == [1, 1, 3]
    assert [lb.method(m).n_second for m in "abc"] == [0, 0, 0]
    # at 3 significant digits they are no longer tied
    lb3 = build_leaderboard(df, "real", metrics={"t": Metric(sigfigs=3)})
    assert [lb3.cell(m, "t").rank for m in "abc"] == [2, 1, 3]


def test_suite_metric_precision_from_the_task():
    # pdebench metrics show 3 significant digits: 0.07912 and 0.07908 both print 0.0791
    df = frame([row("darcy", "a", 0.07912), row("darcy", "b", 0.07908),
                row("darcy", "c", 0.0795), row("darcy", "d", 0.0793)])
    lb = build_leaderboard(df)
    assert [lb.cell(m, "darcy").rank for m in "abcd"] == [1, 1, 4, 3]
    assert lb.cell("a", "darcy").display == "0.0791"


def test_max_metric_ranks_the_largest_first():
    df = frame([row("acc-task", m, v, direction="max", metric="accuracy", suite="other")
                for m, v in [("a", 0.90), ("b", 0.80), ("c", 0.95)]])
    lb = build_leaderboard(df)
    col = lb.tasks[0]
    assert (col.metric.name, col.metric.direction, col.metric.sigfigs) == ("accuracy", "max", 3)
    assert [lb.cell(m, "acc-task").rank for m in "abc"] == [2, 3, 1]
    assert lb.method_keys == ["c", "a", "b"]
    assert "↑" in lb.to_markdown() and "higher is better" in lb.caption


def test_missing_and_failed_cells_are_shown_and_not_ranked():
    rows = [row("t1", "a", 0.10), row("t1", "b", 0.20), row("t1", "c", 0.30),
            row("t2", "a", 0.10), row("t2", "c", 0.30),
            row("t2", "b", float("nan"), status="diverged", error="loss is NaN at epoch 4"),
            row("t2", "b", float("nan"), seed=1, status="diverged"),
            row("t3", "a", 0.50), row("t3", "c", 0.40)]  # b missing on t3
    lb = build_leaderboard(frame(rows))
    b_t2, b_t3 = lb.cell("b", "t2"), lb.cell("b", "t3")
    assert (b_t2.status, b_t2.rank, b_t2.n_failed, b_t2.run_status) == ("failed", None, 2,
                                                                          "diverged")
    assert b_t2.error == "loss is NaN at epoch 4"
    assert (b_t3.status, b_t3.rank) == ("missing", None)
    # c is second on t2, not third: the failed cell is out of the ranking
    assert lb.cell("c", "t2").rank == 2 and lb.cell("c", "t3").rank == 1
    b, c = lb.method("b"), lb.method("c")
    assert (b.covered, b.coverage, b.avg_rank) == (1, "1/3", 2.0)  # 2 / 1 covered task
    assert c.avg_rank == pytest.approx((3 + 2 + 1) / 3)
    md = lb.to_markdown()
    assert "✗ diverged" in md and "—" in md and "loss is NaN at epoch 4" in md
    assert "| 1/3 |" in md
    csv = lb.to_frame().set_index("method")
    assert csv.loc["b", "t2__status"] == "failed: diverged" and pd.isna(csv.loc["b", "t2__rank"])
    assert csv.loc["b", "t3__status"] == "missing" and csv.loc["b", "tasks_covered"] == 1


def test_first_and_second_counts_and_avg_rank():
    values = {  # t1: a<b<c; t2: a=b tie (1,1,3); t3: b<c<a; t4: c<a<b
        "a": [0.10, 0.20, 0.90, 0.50],
        "b": [0.20, 0.20, 0.10, 0.60],
        "c": [0.30, 0.30, 0.50, 0.40],
    }
    lb = build_leaderboard(frame(grid(values, tasks=["t1", "t2", "t3", "t4"])))
    s = lb.summary()
    assert s.loc["a"].tolist() == pytest.approx([(1 + 1 + 3 + 2) / 4, 2, 1, 4, 4])
    assert s.loc["b"].tolist() == pytest.approx([(2 + 1 + 1 + 3) / 4, 2, 1, 4, 4])
    assert s.loc["c"].tolist() == pytest.approx([(3 + 3 + 2 + 1) / 4, 1, 1, 4, 4])
    assert lb.ranks().loc[:, "t2"].tolist() == [1, 1, 3]  # rows in leaderboard order a, b, c
    assert lb.method_keys == ["a", "b", "c"]


def test_mean_and_std_over_seeds():
    rows = [row("t", "a", v, seed=s) for s, v in enumerate([1.0, 2.0, 4.0])]
    rows += [row("t", "a", 99.0, seed=0, phase="search", split="val"),  # not final/test
             row("t", "a", 50.0, seed=7, split="val")]
    rows += [row("t", "b", 3.0)]  # one seed
    # a re-run: seed 0 of c failed first, then finished ok; seed 1 failed for good
    rows += [row("t", "c", float("nan"), seed=0, status="failed", finished_at="2026-01-01T00:00"),
             row("t", "c", 5.0, seed=0, finished_at="2026-01-02T00:00"),
             row("t", "c", 6.0, seed=2),
             row("t", "c", float("nan"), seed=1, status="stopped", error="early-stopped")]
    lb = build_leaderboard(frame(rows))
    a, b, c = (lb.cell(m, "t") for m in "abc")
    assert (a.n, a.mean, a.std) == (3, pytest.approx(7 / 3), pytest.approx(np.std([1, 2, 4],
                                                                                  ddof=1)))
    assert a.display == "2.33" and a.display_std == "1.53"
    assert b.n == 1 and math.isnan(b.std) and b.display_std == ""
    assert (c.n, c.mean, c.n_failed, c.run_status) == (2, 5.5, 1, "stopped")
    md = lb.to_markdown()
    # b has one seed: no spread to tell it from the best, so it is marked ≈
    assert "**2.33 ± 1.53** (1)" in md and "| 3 (2) ≈ n=1 |" in md
    assert "c / t: 1 seed(s) stopped" in md
    csv = lb.to_frame().set_index("method")
    assert csv.loc["a", "t__n"] == 3 and csv.loc["a", "t__std"] == pytest.approx(1.5275252)
    assert pd.isna(csv.loc["b", "t__std"])


def test_real_and_synthetic_are_never_ranked_together(tmp_path):
    rows = [row("t", "a", 0.10), row("t", "b", 0.20),
            row("t", "b", 0.05, source="synthetic"), row("t", "c", 0.01, source="synthetic")]
    boards = build_leaderboards(frame(rows))
    assert [lb.data_source for lb in boards] == ["real", "synthetic"]
    real, syn = boards
    assert real.method_keys == ["a", "b"] and real.cell("b", "t").rank == 2
    assert syn.method_keys == ["c", "b"] and syn.cell("b", "t").rank == 2
    assert real.cell("b", "t").mean == 0.20 and syn.cell("b", "t").mean == 0.05
    assert "never ranked together" in real.caption and "synthetic results" in real.caption
    paths = write_leaderboard(frame(rows), tmp_path)
    assert {"leaderboard.md", "leaderboard-synthetic.md", "leaderboard-synthetic.csv"} <= set(paths)
    assert "Leaderboard: synthetic data" in (tmp_path / "leaderboard-synthetic.md").read_text()
    # rebuilding one source rewrites only its own set, under the same name
    real_md = (tmp_path / "leaderboard.md").read_text()
    paths = write_leaderboard(frame(rows), tmp_path, data_source="synthetic")
    assert sorted(paths) == ["leaderboard-synthetic.csv", "leaderboard-synthetic.html",
                             "leaderboard-synthetic.md", "leaderboard-synthetic.tex"]
    assert (tmp_path / "leaderboard.md").read_text() == real_md
    # only synthetic results: no suffix, the caption names the source
    paths = write_leaderboard(frame(rows[2:]), tmp_path / "syn")
    assert "Data source: synthetic" in paths["leaderboard.md"].read_text()


def test_versions_are_never_averaged_together():
    rows = [row("darcy", "a", 0.1), row("darcy", "b", 0.2),
            {**row("darcy", "a", 0.3), "task_version": "tv2"}]
    lb = build_leaderboard(frame(rows))
    assert lb.task_keys == ["darcy@tv1", "darcy@tv2"]
    assert lb.cell("a", "darcy@tv2").mean == 0.3 and lb.cell("b", "darcy@tv2").status == "missing"
    assert "darcy@tv2 tv2" in lb.caption


# ---- significance ---------------------------------------------------------------------------

def test_friedman_only_with_five_complete_tasks():
    rng = np.random.default_rng(3)
    vals = np.round(rng.uniform(0.01, 0.09, size=(3, 8)), 3)  # 3 significant digits: exact
    vals[2, 6] = np.nan  # c lacks shallow-water -> 7 complete blocks
    lb = build_leaderboard(frame(grid({m: list(v) for m, v in zip("abc", vals)})))
    sig = lb.significance
    assert sig.test == "friedman" and sig.n_blocks == 7 and "shallow-water" not in sig.blocks
    complete = np.delete(vals, 6, axis=1)
    assert sig.pvalue == pytest.approx(stats.friedmanchisquare(*complete).pvalue, rel=1e-12)
    assert "Friedman test on the 7 of 8 tasks" in lb.caption
    # four tasks: no test, and the caption says why
    few = build_leaderboard(frame(grid({m: list(v[:4]) for m, v in zip("abc", vals)})))
    assert not few.significance.ran
    assert "No significance test: only 4 of 4 task(s)" in few.caption
    assert few.plot_cd(Path("unused.png")) is None


def test_max_direction_in_the_friedman_matrix():
    vals = {"a": [0.9] * 5, "b": [0.8] * 5, "c": [0.7, 0.7, 0.7, 0.7, 0.95]}
    rows = [row(f"t{i}", m, v, direction="max", metric="acc", suite="x")
            for m, vs in vals.items() for i, v in enumerate(vs)]
    sig = build_leaderboard(frame(rows)).significance
    assert sig.mean_ranks == pytest.approx({"a": 1.2, "b": 2.2, "c": 2.6})


# ---- reference rows -------------------------------------------------------------------------

def test_reference_rows_shown_but_not_ranked():
    values = {"recraft": [0.0080, 0.0110, 0.0030], "orca": [0.0090, 0.0100, 0.0035]}
    tasks = ["advection", "burgers", "darcy"]
    df = frame(grid(values, tasks=tasks))
    plain = build_leaderboard(df)
    ref = build_leaderboard(df, reference=True)
    assert plain.reference == []
    pd.testing.assert_frame_equal(plain.ranks(), ref.ranks())
    pd.testing.assert_frame_equal(plain.summary(), ref.summary())
    assert [r.label for r in ref.reference] == ["RECRAFT (paper)", "MoNA (paper)", "ORCA (paper)"]
    assert set(ref.reference[0].values) == set(tasks)  # only tasks present
    md = ref.to_markdown()
    assert "reference (paper, not run here)" in md and "| RECRAFT (paper) | 0.0078 | 0.0108 |" in md
    assert "| MoNA (paper) | 0.0088 | — | 0.079 |" in md
    assert "paper, not run here" not in plain.to_markdown()
    csv = ref.to_frame()
    assert csv["kind"].tolist() == ["ranked"] * 2 + ["reference"] * 3
    assert csv.loc[csv["kind"] == "reference", "darcy__rank"].isna().all()
    # on synthetic data the rows carry the caveat
    syn = build_leaderboard(frame(grid(values, tasks=tasks, source="synthetic")), "synthetic",
                            reference="paper")
    assert "not comparable with synthetic runs" in syn.to_markdown()


def test_paper_ties_recomputed_from_raw_values():
    # the paper's Darcy cells: RECRAFT 0.079, MoNA 0.079, ORCA 0.081 -> ranks 1, 1, 3
    df = frame([row("darcy", "RECRAFT", 0.079), row("darcy", "MoNA", 0.079),
                row("darcy", "ORCA", 0.081)])
    lb = build_leaderboard(df)
    assert lb.ranks()["darcy"].to_dict() == {"MoNA": 1, "RECRAFT": 1, "ORCA": 3}


# ---- writers and CLI ------------------------------------------------------------------------

def _sweep_rows(source="real"):
    rng = np.random.default_rng(0)
    base = {"recraft": 0.010, "recraft-no-fld": 0.011, "orca": 0.013, "nft": 0.020}
    rows = []
    for t in PDE:
        for m, b in base.items():
            for s in range(3):
                failed = m == "nft" and t == "darcy"
                value = float("nan") if failed else b * (1 + 0.05 * rng.standard_normal())
                rows.append(row(t, m, value, seed=s, source=source,
                                status="diverged" if failed else "ok",
                                variant_of="recraft" if m == "recraft-no-fld" else None))
    return rows


def test_writers_produce_every_format(tmp_path):
    df = frame(_sweep_rows())
    paths = write_leaderboard(df, tmp_path, reference=True)
    assert sorted(paths) == ["cd_diagram.png", "leaderboard.csv", "leaderboard.html",
                             "leaderboard.md", "leaderboard.tex"]
    tex = paths["leaderboard.tex"].read_text()
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\textbf{" in tex and r"\multicolumn{14}{l}{\textit{reference (paper" in tex
    html = paths["leaderboard.html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "✗ diverged" in html
    csv = pd.read_csv(paths["leaderboard.csv"])
    assert len(csv) == 4 + 3 and {"darcy__mean", "darcy__rank", "avg_rank", "n_first"} <= set(csv)
    assert "recraft-no-fld (variant of recraft)" in paths["leaderboard.md"].read_text()
    # a later build without a diagram removes the stale one
    few = frame([r for r in _sweep_rows() if r["task"] in PDE[:3]])
    paths = write_leaderboard(few, tmp_path)
    assert "cd_diagram.png" not in paths and not (tmp_path / "cd_diagram.png").exists()
    assert "No significance test" in leaderboard_markdown(few)


def test_cli_round_trip(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    append_rows(results, _sweep_rows(), tag="final")
    append_rows(results, [row("darcy", "recraft", 0.5, phase="search", split="val")], tag="s")
    # run the module as `python -m harness.leaderboard` does, in this interpreter (fast)
    monkeypatch.delitem(sys.modules, "harness.leaderboard.__main__", raising=False)
    monkeypatch.setattr(sys, "argv", ["harness.leaderboard", "--results", str(results),
                                      "--reference", "paper"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("harness.leaderboard", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    proc = capsys.readouterr()
    out = results / "leaderboard"
    for name in ["leaderboard.md", "leaderboard.csv", "leaderboard.html", "leaderboard.tex"]:
        assert (out / name).stat().st_size > 500, name
    png = (out / "cd_diagram.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 5000
    assert "## Leaderboard: real data (pdebench)" in proc.out
    assert "RECRAFT (paper)" in proc.out and "wrote 5 file(s)" in proc.err
    csv = pd.read_csv(out / "leaderboard.csv")
    ranked = csv[csv["kind"] == "ranked"].set_index("method")
    assert ranked.loc["nft", "tasks_covered"] == 7 and ranked.loc["nft", "darcy__status"] == \
        "failed: diverged"
    # a single parquet file works too, with --out and --data-source
    part = next((results / "parts").glob("final-*.parquet"))
    assert cli_main(["--results", str(part), "--out", str(tmp_path / "o"),
                     "--data-source", "real"]) == 0
    assert (tmp_path / "o" / "cd_diagram.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_errors(tmp_path, capsys):
    assert cli_main(["--results", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no results at") and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert cli_main(["--results", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no results in") and "\n" not in err
    append_rows(tmp_path / "search", [row("t", "a", 0.1, phase="search", split="val")])
    assert cli_main(["--results", str(tmp_path / "search")]) == 1
    assert "no final test results" in capsys.readouterr().err
    append_rows(tmp_path / "realonly", [row("t", "a", 0.1)])
    assert cli_main(["--results", str(tmp_path / "realonly"), "--data-source", "synthetic"]) == 1
    assert "data_source == 'synthetic'" in capsys.readouterr().err
