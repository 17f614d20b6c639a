"""``--retry-failed`` bookkeeping: which files move aside, the plan, and when it is refused."""
from __future__ import annotations

import json

import pytest

from harness.engine import done_marker
from harness.results import append_rows, read_results, retire_cell, retired_attempts
from harness.sweep import cell_failed, retire_failed


def row(method: str, status: str) -> dict:
    return {"sweep": "s", "suite": "pdebench", "task": "advection", "method": method,
            "phase": "final", "split": "test", "status": status, "value": 0.5}


def finished(results, key: str, content: str, finals_ok: int, best=0.5):
    marker = done_marker(results, key, content)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"cell": key, "finals_ok": finals_ok, "best_val": best}))
    return marker


@pytest.fixture
def sweep(tmp_path):
    sweep_dir = tmp_path / "s"
    results = sweep_dir / "results"
    append_rows(results, [row("recraft", "failed")], tag="advection__recraft")
    append_rows(results, [row("recraft-ref", "ok")], tag="advection__recraft-ref")
    bad = finished(results, "advection/recraft", "c1", finals_ok=0, best=None)
    good = finished(results, "advection/recraft-ref", "c2", finals_ok=2)
    plan = {"parts": [{"tune_name": "s", "cells": {"advection/recraft": {"content": "c1"},
                                                   "advection/recraft-ref": {"content": "c2"}}}]}
    (sweep_dir / "plan.json").write_text(json.dumps(plan))
    return sweep_dir, results, bad, good


def test_cell_failed_reads_the_marker(sweep):
    _, _, bad, good = sweep
    assert cell_failed(bad, seeds=2) and not cell_failed(good, seeds=2)
    assert cell_failed(good, seeds=3)           # fewer ok finals than seeds


def test_retire_moves_only_that_cell_and_keeps_its_rows(sweep):
    sweep_dir, results, bad, good = sweep
    attempts = retire_failed(sweep_dir, results, [("advection/recraft", bad)])
    assert attempts == {"advection/recraft": 2}
    left = read_results(results)
    assert list(left.method) == ["recraft-ref"]            # recraft-ref's part is not matched
    assert not bad.exists() and good.exists()
    kept = list((results / "superseded").rglob("*"))
    assert any(p.name == bad.name for p in kept)
    assert sum(p.suffix == ".parquet" for p in kept) == 1
    plan = json.loads((sweep_dir / "plan.json").read_text())
    assert list(plan["parts"][0]["cells"]) == ["advection/recraft-ref"]
    assert retired_attempts(results, bad.name) == 1


def test_a_second_retry_is_attempt_three(sweep):
    sweep_dir, results, bad, _ = sweep
    retire_cell(results, "advection/recraft", bad)
    finished(results, "advection/recraft", "c1", finals_ok=0, best=None)
    assert retire_failed(sweep_dir, results, [("advection/recraft", bad)]) == {"advection/recraft": 3}


def test_refused_while_the_last_part_is_unfinished(sweep):
    sweep_dir, results, bad, good = sweep
    good.unlink()                                # recraft-ref: interrupted, no marker
    with pytest.raises(ValueError, match="without --retry-failed"):
        retire_failed(sweep_dir, results, [("advection/recraft", bad)])
    assert bad.exists()                          # nothing moved
