"""Faults that must lose nothing: a damaged or missing result part, a full disk, bad flags; and
the disk a sweep leaves behind (ended trials' checkpoints are removed).

Real sweeps (a local Ray, an MLflow sqlite store, HDF5 files), as small as they go: one tiny
task, ``nft`` (2 search trials, 1 seed) and the ``mean`` floor.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil

import pandas as pd
import pytest

from harness.data import synth
from harness.tracking import runs_tree


def _args(data, runs, name="faults", methods="nft,mean", *extra):
    return ["--suite", "pdebench", "--tasks", "advection", "--methods", methods,
            "--profile", "smoke", "--num-samples", "2", "--seeds", "1",
            "--data-root", str(data), "--runs-dir", str(runs), "--name", name, *extra]


def _main(argv):
    """(exit code, stdout, stderr) of ``python -m harness.sweep`` run in this process."""
    from harness.sweep import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _tree(runs):
    return runs_tree(f"sqlite:///{runs / 'mlflow.db'}", "pdebench")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-data")
    synth.generate("advection", root, size="tiny", seed=0)
    return root


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A finished sweep: (its runs folder, exit code, stdout)."""
    runs = tmp_path_factory.mktemp("faults") / "runs"
    rc, out, err = _main(_args(data, runs))
    assert rc == 0, out[-2000:] + err[-2000:]
    return runs, out


def test_ended_trials_leave_no_checkpoint_and_disk_use_is_reported(finished):
    runs, out = finished
    tune = runs / "faults" / "tune"
    ckpt_dirs = list(tune.rglob("checkpoint_*"))
    assert ckpt_dirs, "the trials reported checkpoints"            # Tune's folders are kept ...
    left = [p for d in ckpt_dirs for p in d.rglob("*") if p.is_file()]
    assert left == []                                              # ... but emptied
    line = [ln for ln in out.splitlines() if ln.startswith("Disk use:")]
    assert len(line) == 1 and str(runs / "faults") in line[0] and "MB freed" in line[0], out[-1500:]


def test_a_lost_part_reruns_its_cell_and_a_damaged_one_is_refused(data, finished, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(finished[0], runs)
    sweep = runs / "faults"
    before = pd.read_parquet(sweep / "results.parquet")
    parts = sweep / "results" / "parts"
    (nft_part,) = parts.glob("advection__nft-*.parquet")
    (mean_marker,) = (sweep / "results" / "cells").glob("advection__mean-*.json")
    mean_mtime = mean_marker.stat().st_mtime_ns

    # a damaged part: refused before anything starts, saying which file and what to do
    nft_part.write_bytes(nft_part.read_bytes()[:100])
    rc, out, err = _main(_args(data, runs))
    assert rc == 2
    assert err.startswith("error: ") and str(nft_part) in err and "damaged" in err
    assert "run the same command again" in err and "Move it out of" in err
    assert len(_tree(runs)) == len(_tree(finished[0]))             # no MLflow run was opened

    # the natural fix, deleting it: the cell is unfinished and runs again; nothing is lost
    nft_part.unlink()
    rc, out, err = _main(_args(data, runs))
    assert rc == 0, out[-2000:] + err[-2000:]
    assert "advection/nft was marked finished, but its rows are missing" in err
    after = pd.read_parquet(sweep / "results.parquet")
    assert len(after) == len(before)
    assert sorted(after.method.unique()) == ["mean", "nft"]
    assert (after[after.method == "nft"].phase == "search").sum() == 2
    assert mean_marker.stat().st_mtime_ns == mean_mtime            # the intact cell did not rerun
    kept = list((sweep / "results" / "superseded").rglob("advection__nft-*.json"))
    assert len(kept) == 1                                          # the old marker is kept aside
    assert not _tree(runs).status.eq("RUNNING").any()


def test_a_table_that_would_shrink_is_kept_aside(tmp_path):
    from harness.results import read_results, replace_table

    rows = [{"sweep": "s", "task": t, "method": "m", "phase": "final", "value": 0.5}
            for t in ("a", "b", "c")]
    path = tmp_path / "results.parquet"
    assert replace_table(pd.DataFrame(rows), path) is None
    msg = replace_table(pd.DataFrame(rows[:2]), path)
    assert msg and "held 3 rows" in msg and "now hold 2" in msg and "c/m" in msg
    (aside,) = (tmp_path / "superseded").glob("results-*.parquet")
    assert len(read_results(aside)) == 3 and len(read_results(path)) == 2


@pytest.mark.parametrize("flag,value", [("--num-samples", "0"), ("--seeds", "-1"), ("--seeds", "0"),
                                        ("--max-concurrent", "0"), ("--workers-per-trial", "0")])
def test_bad_numbers_exit_2_before_anything_is_written(data, tmp_path, flag, value):
    runs = tmp_path / "runs"
    rc, out, err = _main(_args(data, runs, "bad", "nft", flag, value))
    assert rc == 2
    assert err.startswith("error: ") and f"{flag} {value} is not allowed" in err
    assert "must be an integer >= " in err
    assert not runs.exists()                                       # no plan.json, no MLflow store


def test_missing_data_exits_2_before_plan_or_mlflow(tmp_path):
    runs, empty = tmp_path / "runs", tmp_path / "no-data"
    empty.mkdir()
    rc, out, err = _main(_args(empty, runs, "nodata", "nft"))
    # reported by the preflight, with every other problem, before anything is written
    assert rc == 2 and err.startswith("preflight: 1 error(s)"), err[-2000:]
    assert "data file for task 'advection' not found" in err
    assert not (runs / "nodata" / "plan.json").exists()
    assert not (runs / "mlflow.db").exists()                       # no sweep run left RUNNING


def test_disk_full_stops_with_one_line_and_the_rerun_resumes(data, tmp_path, monkeypatch):
    import harness.engine.callback as callback

    runs = tmp_path / "runs"
    writes = []

    def no_space(results_dir, rows, tag="rows"):
        writes.append(tag)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC),
                      os.path.join(str(results_dir), "parts", f"{tag}.parquet"))

    monkeypatch.setattr(callback, "append_rows", no_space)
    rc, out, err = _main(_args(data, runs, "full", "mean"))
    assert rc == 1 and writes, out[-2000:] + err[-2000:]
    headline = [ln for ln in err.splitlines() if "disk full" in ln]
    assert len(headline) == 1 and headline[0].startswith("error: disk full")
    assert str(runs / "full" / "results" / "parts") in headline[0]
    assert re.search(r"\(\d+\.\d [MG]B free; the sweep needs about \d+\.\d [MG]B more", headline[0])
    assert "run the same command again to resume" in headline[0]
    assert "Traceback" not in out + err
    tree = _tree(runs)
    assert not tree.status.eq("RUNNING").any(), tree[["kind", "name", "status"]]
    assert tree[tree.kind == "sweep"].status.tolist() == ["FAILED"]
    assert not list((runs / "full" / "results").rglob("*.json"))  # no marker without its rows

    monkeypatch.undo()                                             # space freed: resume
    rc, out, err = _main(_args(data, runs, "full", "mean"))
    assert rc == 0, out[-2000:] + err[-2000:]
    assert "resuming the interrupted sweep" in out
    df = pd.read_parquet(runs / "full" / "results.parquet")
    assert (df.phase == "search").sum() == 1 and (df.phase == "final").sum() == 2
    assert df.status.isin(["ok", "stopped"]).all() and df[df.phase == "final"].status.eq("ok").all()
