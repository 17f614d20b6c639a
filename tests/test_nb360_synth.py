"""Synthetic NAS-Bench-360 stand-ins: upstream formats, labelled synthetic, check 10/10, reuse."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.data.__main__ import main as data_main
from harness.data.nb360 import synth
from harness.data.nb360.catalog import DATASETS, TASK_NAMES
from harness.suites import get_suite


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nb360tiny")
    synth.generate_suite(root, size="tiny", seed=0, progress=None)
    return root


def test_check_reports_all_ten_ok_and_synthetic(tiny, capsys):
    assert data_main(["check", "--suite", "nasbench360", "--root", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "10/10 task(s) OK" in out
    assert out.count("(synthetic)") == 10 and out.count("SYNTHETIC stand-in") == 10


def test_every_task_loads_as_synthetic_with_its_target_kind(tiny):
    for name, task in get_suite("nasbench360").items():
        d = task.load(tiny)
        assert d.source == "synthetic" and d.attrs["synthetic"] is True, name
        marker = json.loads((tiny / DATASETS[name].marker).read_text())
        assert marker["complete"] and marker["task"] == name and "SYNTHETIC" in marker["note"]
        for rel, size in marker["files"].items():
            assert (tiny / rel).stat().st_size == size
        y = d.y["train"]
        if task.kind == "classification":
            assert y.dtype == np.int64 and y.min() >= 0 and y.max() < task.head.num_classes
        elif task.kind == "multilabel":
            assert y.shape[1] == task.head.num_classes and set(np.unique(y)) <= {0.0, 1.0}
        else:
            assert y.ndim == 4 and y.shape[1] == 1
        assert all(len(d.x[s]) > 0 for s in ("train", "val", "test")), name


def test_same_seed_same_data_other_seed_other_data(tiny, tmp_path):
    synth.generate_suite(tmp_path, size="tiny", seed=0, tasks=["satellite", "darcy-flow"], progress=None)
    t = get_suite("nasbench360")
    for name in ("satellite", "darcy-flow"):
        a, b = t[name].load(tiny), t[name].load(tmp_path)
        np.testing.assert_array_equal(a.x["train"], b.x["train"])
        np.testing.assert_array_equal(a.y["test"], b.y["test"])
    synth.generate("satellite", tmp_path / "s1", size="tiny", seed=1)
    c = t["satellite"].load(tmp_path / "s1")
    assert not np.array_equal(c.x["train"], t["satellite"].load(tiny).x["train"])


def test_up_to_date_set_is_kept_stale_replaced_real_refused(tmp_path):
    p = synth.generate("ninapro", tmp_path, size="tiny")
    mtime = p.stat().st_mtime_ns
    assert synth.generate("ninapro", tmp_path, size="tiny") == p and p.stat().st_mtime_ns == mtime
    synth.generate("ninapro", tmp_path, size="small")            # another preset: replaced
    assert json.loads((tmp_path / DATASETS["ninapro"].marker).read_text())["size"] == "small"
    real = tmp_path / "real"
    (real).mkdir()
    np.save(real / "satellite_train.npy", {"data": np.zeros((2, 46)), "label": np.ones(2)})
    with pytest.raises(synth.NotSyntheticFile, match="no synthetic-data marker"):
        synth.generate("satellite", real, size="tiny")
    with pytest.raises(synth.UnknownName, match="unknown size 'huge'"):
        synth.generate("satellite", real, size="huge")


def test_the_sweep_data_hook_generates_missing_nasbench360_tasks(tmp_path):
    from harness.profiles import get_profile
    from harness.sweep import ensure_data
    from harness.sweep.planning import SweepPlan

    tasks = [get_suite("nasbench360")[n] for n in ("ecg", "cosmic")]
    sp = SweepPlan(profile=get_profile("smoke"), tasks=tasks, methods=[], broken={}, name="s",
                   runs=tmp_path / "runs", data_root=None, coverage={})
    logs = []
    assert ensure_data(sp, log=logs.append) == sp.synthetic_root
    assert any("generating synthetic data for 2 task(s)" in line for line in logs)
    for t in tasks:
        assert t.load(sp.synthetic_root, splits=("train",)).source == "synthetic"


def test_presets_cover_every_task_and_profile_sizes():
    from harness.profiles import PROFILES

    for size in {p.synthetic_size for p in PROFILES.values()}:
        assert set(synth.SIZES[size]) == set(TASK_NAMES)


def test_profile_caps_keep_per_sample_extras_aligned(tiny):
    from harness.profiles import get_profile
    from harness.trial.data import load_for_phase

    prof = get_profile("smoke").with_overrides(max_train_samples=5, max_eval_samples=3)
    d = load_for_phase(get_suite("nasbench360")["cosmic"], tiny, prof, "final")
    assert len(d.x["train"]) == len(d.aux["train"]["ignore"]) == 5
    assert len(d.x["val"]) == len(d.aux["val"]["ignore"]) == 1      # only 1 val image in tiny
    assert len(d.x["test"]) == len(d.aux["test"]["ignore"]) == 6     # test is never capped
    e = load_for_phase(get_suite("nasbench360")["ecg"], tiny, prof, "search")
    assert "test" not in e.x and len(e.aux["train"]["record"]) == 5
