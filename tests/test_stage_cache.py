"""The stage cache: stage 1 (and the source side under it) is reused by trials that share their
inputs, and a corrupted entry is rebuilt, never used."""
from __future__ import annotations

import numpy as np
import pytest

from harness.data import synth
from harness.methods.discovery import get_method
from harness.profiles import PROFILES
from harness.suites import get_suite
from recraft.run import run_one

PROFILE = PROFILES["smoke"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("cache-data")
    synth.generate("darcy", r, size="tiny", seed=0)
    return r


def _events(out):
    return [e for e in out["cache_events"] if e[0] == "stage1"]


def test_second_trial_with_the_same_inputs_hits_the_stage1_cache(root, tmp_path):
    cache = tmp_path / "cache"
    first = run_one("recraft", "darcy", root, profile=PROFILE, test_config=True, cache_dir=cache)
    second = run_one("recraft", "darcy", root, profile=PROFILE, test_config=True, cache_dir=cache)
    assert _events(first) == [("stage1", "miss")]
    assert _events(second) == [("stage1", "hit")]
    assert second["stage_seconds"]["align"] < first["stage_seconds"]["align"]
    # same inputs, same result: the cached embedder gives the same validation metric
    assert second["metrics"]["val_nrmse"] == pytest.approx(first["metrics"]["val_nrmse"], rel=1e-6)
    # a different consumed hyperparameter is a different entry
    cfg = dict(get_method("recraft").test_config(get_suite("pdebench")["darcy"]))
    cfg["align.epsilon"] = 0.9 if cfg["align.epsilon"] != 0.9 else 0.8
    third = run_one("recraft", "darcy", root, profile=PROFILE, config=cfg, cache_dir=cache)
    assert _events(third) == [("stage1", "miss")]


def test_a_corrupted_stage1_entry_is_rebuilt(root, tmp_path):
    cache = tmp_path / "cache"
    first = run_one("recraft", "darcy", root, profile=PROFILE, test_config=True, cache_dir=cache)
    payloads = [p for p in (cache / "stage1").rglob("*") if p.is_file() and p.stat().st_size > 1000]
    assert payloads, "no stage-1 payload was written"
    for p in payloads:                                   # flip bytes in the middle of each payload
        data = bytearray(p.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 64] = bytes(64)
        p.write_bytes(bytes(data))
    again = run_one("recraft", "darcy", root, profile=PROFILE, test_config=True, cache_dir=cache)
    assert _events(again) == [("stage1", "miss")]        # detected, rebuilt
    assert np.isfinite(again["metrics"]["val_nrmse"])
    assert again["metrics"]["val_nrmse"] == pytest.approx(first["metrics"]["val_nrmse"], rel=1e-6)
