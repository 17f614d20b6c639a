"""Issue 13 item 5: no trial hangs a sweep for ever.

A real sweep with a plugin method whose trial sleeps for ever ends: the trial is stopped at its
wall-clock limit (``--trial-timeout``), its row says ``timeout``, the progress view printed a stall
warning naming it first, and ``--retry-failed`` runs the cell again under the same name. Leaving a
cell of an interrupted sweep out (``--drop-cell`` or a narrower ``--methods``) no longer asks for
a new sweep name.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.data import synth
from harness.engine.watchdog import TrialLimits, TrialWatchdog, parse_duration, trial_limits
from harness.profiles import get_profile

HANGS = textwrap.dedent('''
    import os
    import time
    from harness.methods.contract import Method, Stage
    from harness.methods.space import LogFloat

    FLAGS = {flags!r}

    class _HangsOnce(Method):
        """Sleeps for ever in its first trial of ``hang_phase`` (a flag file says it did)."""
        version = "1"
        stages = (Stage("fit", ("fit.lr",)),)
        hang_phase = "search"

        def search_space(self, task):
            return {{"fit.lr": LogFloat(1e-3, 1e-1)}}

        def defaults(self, task):
            return {{"fit.lr": 1e-2}}

        def stage_fit(self, ctx, config, upstream):
            flag = os.path.join(FLAGS, self.name)
            if ctx.phase == self.hang_phase and not os.path.exists(flag):
                open(flag, "w").close()
                time.sleep(3600)                 # a hung data loader, a deadlocked collective
            metrics = {{ctx.metric_key: 0.4, "test_nrmse": 0.4}}
            for epoch in range(1, ctx.profile.epochs(1) + 1):
                ctx.report(epoch, metrics)
            return {{"metrics": metrics}}

    class HangsInSearch(_HangsOnce):
        name = "hangs-in-search"

    class HangsInFinal(_HangsOnce):
        name = "hangs-in-final"
        hang_phase = "final"
''')


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hung-data")
    synth.generate("advection", root, size="tiny", seed=0)
    return root


@pytest.mark.slow
def test_a_hung_trial_is_stopped_with_status_timeout_after_a_stall_warning(data, tmp_path,
                                                                            monkeypatch, capsys):
    plugins, flags = tmp_path / "plugins", tmp_path / "flags"
    plugins.mkdir()
    flags.mkdir()
    (plugins / "hangs.py").write_text(HANGS.format(flags=str(flags)))
    from harness.methods import discovery

    monkeypatch.setattr(discovery, "BASELINES_DIR", plugins)
    from harness.sweep import main

    args = ["--suite", "pdebench", "--tasks", "advection", "--methods",
            "hangs-in-search,hangs-in-final", "--profile", "smoke", "--num-samples", "2",
            "--seeds", "1", "--max-failures", "1", "--trial-timeout", "30",
            "--data-root", str(data), "--runs-dir", str(tmp_path / "runs"), "--name", "hung"]
    rc = main(args)
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 3, text[-3000:]          # the sweep ended; the cell whose final hung failed
    df = pd.read_parquet(tmp_path / "runs" / "hung" / "results.parquet")
    search = df[(df.method == "hangs-in-search") & (df.phase == "search")]
    assert sorted(search.status) == ["ok", "timeout"], search[["status", "error"]]
    hung = search[search.status == "timeout"].iloc[0]
    assert "per-trial limit of 30s" in hung.error and hung.trial_id in hung.error
    # the other search trial was selected and its final ran: that cell is fine
    fine = df[(df.method == "hangs-in-search") & (df.phase == "final") & (df.split == "test")]
    assert fine.status.tolist() == ["ok"]
    final = df[(df.method == "hangs-in-final") & (df.phase == "final") & (df.split == "test")]
    assert final.status.tolist() == ["timeout"]          # stopped once, not retried
    # the progress view named the silent trial before it was stopped
    assert f"warning: trial {hung.trial_id} (advection/hangs-in-search, search) has not " \
           f"reported for" in text
    assert f"timeout: trial {hung.trial_id}" in text

    # the cell that hung runs again under the same name; the fine cell is not rerun
    rc = main(args + ["--retry-failed"])
    assert rc == 0, capsys.readouterr().err[-3000:]
    df2 = pd.read_parquet(tmp_path / "runs" / "hung" / "results.parquet")
    again = df2[(df2.method == "hangs-in-final") & (df2.phase == "final") & (df2.split == "test")]
    assert again.status.tolist() == ["ok"]
    assert len(df2[df2.method == "hangs-in-search"]) == len(df[df.method == "hangs-in-search"])


def test_watchdog_warns_once_per_silence_and_stops_a_trial_past_its_limit():
    now = [0.0]
    lines, stopped = [], []
    dog = TrialWatchdog(TrialLimits({"a/m": 100.0}, {"a/m": 30.0}), warn=lines.append,
                        clock=lambda: now[0], every=0.0, stop=lambda t, why: stopped.append(t))
    dog.started_trial("t1")
    running = {"t1": ("a/m", "search")}
    now[0] = 20.0
    assert dog.check(running) == [] and lines == []
    now[0] = 31.0
    dog.check(running)
    now[0] = 40.0
    dog.check(running)
    assert len(lines) == 1 and lines[0].startswith("warning: trial t1 (a/m, search) has not "
                                                   "reported for 31s")
    dog.reported_trial("t1")                 # it reported: a later silence is warned again
    now[0] = 75.0
    dog.check(running)
    assert len(lines) == 2 and "has not reported for 35s" in lines[1]
    now[0] = 101.0
    assert dog.check(running) == ["t1"] and stopped == ["t1"]
    assert "per-trial limit of 1m40s" in dog.expired["t1"]
    now[0] = 200.0
    assert dog.check(running) == [] and stopped == ["t1"]       # stopped once


def test_trial_limits_scale_with_the_profiles_budget_and_the_flag_overrides():
    smoke, paper = get_profile("smoke"), get_profile("paper")
    lim = trial_limits({"a/m": (smoke, smoke.epochs(200)), "b/m": (paper, paper.epochs(200))},
                       None, False)
    assert lim.timeout["a/m"] < lim.timeout["b/m"]
    assert smoke.trial_timeout(20) > smoke.trial_timeout(2)
    assert lim.stall_after["a/m"] <= lim.timeout["a/m"] / 2
    flagged = trial_limits({"a/m": (smoke, 2)}, 8.0, True)
    assert flagged.timeout["a/m"] == 8.0 and flagged.stall_after["a/m"] == 4.0
    assert trial_limits({"a/m": (smoke, 2)}, None, True).timeout["a/m"] is None   # --trial-timeout 0
    assert (parse_duration("15m"), parse_duration("2h"), parse_duration("0")) == (900.0, 7200.0, None)
    with pytest.raises(ValueError, match="--trial-timeout"):
        parse_duration("soon")
    # a limit is no part of what a cell computes: changing it never reruns finished cells
    assert "timeout" not in repr(smoke)


def _entry(key: str, content: str = "c1"):
    return SimpleNamespace(key=key, saved={"content": content, "description": {"v": content}})


def test_leaving_a_cell_out_of_an_interrupted_sweep_keeps_its_name(tmp_path, monkeypatch):
    """Before: "planned differently ... start a new sweep with --name x-2"."""
    from ray import tune

    from harness.sweep.parts import PLAN_FILE, PlanChanged, earlier_attempts, resume_plan

    sweep_dir, results = tmp_path / "x", tmp_path / "x" / "results"
    sweep_dir.mkdir()
    cells = {k: _entry(k).saved for k in ("a/hangs", "a/nft", "b/nft")}
    (sweep_dir / PLAN_FILE).write_text(json.dumps({"parts": [{"tune_name": "x", "cells": cells}]}))
    monkeypatch.setattr(tune.Tuner, "can_restore", staticmethod(lambda path: True))
    # a changed plan is still refused
    with pytest.raises(PlanChanged, match="--name x-2"):
        resume_plan(sweep_dir, str(tmp_path / "tune"), "x", [_entry("a/nft", "c2")], results)
    # a narrower plan (the hung cell left out) starts the others again in a new part
    todo = [_entry("a/nft"), _entry("b/nft")]
    part, restore = resume_plan(sweep_dir, str(tmp_path / "tune"), "x", todo, results)
    assert (part, restore) == ("x.2", None)
    saved = json.loads((sweep_dir / PLAN_FILE).read_text())
    assert sorted(saved["parts"][-1]["cells"]) == ["a/nft", "b/nft"]
    assert earlier_attempts(sweep_dir, part, ["a/nft", "b/nft"]) == {"a/nft": 1, "b/nft": 1}


def test_drop_cell_leaves_one_cell_out_of_the_plan(tmp_path):
    from harness.sweep.cli import build_parser
    from harness.sweep.planning import plan_sweep

    args = build_parser().parse_args(["--tasks", "advection,darcy", "--methods", "nft,recraft",
                                      "--profile", "smoke", "--drop-cell", "advection:nft",
                                      "--runs-dir", str(tmp_path)])
    sp = plan_sweep(args)
    assert [(t.name, m.name) for t, m in sp.planned()] == [
        ("advection", "recraft"), ("darcy", "nft"), ("darcy", "recraft")]
    args.drop_cell = ["advection/nope"]
    with pytest.raises(ValueError, match="--drop-cell 'advection/nope'"):
        plan_sweep(args)
