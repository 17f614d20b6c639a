"""Preflight before the first trial: missing bodies, unreadable data and a tracking server that
does not answer are all reported at once, one message each, and the sweep exits 2 before Ray
starts; the body check itself, here and on the nodes of a cluster."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster.bodies import local_body_issues
from harness.data import synth
from recraft.backbones import backbone_problem


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep(tmp_path: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness.sweep", "--suite", "pdebench", "--methods", "nft,recraft",
           "--num-samples", "2", "--seeds", "2", "--runs-dir", str(tmp_path / "runs"),
           "--name", "pf", *extra]
    full = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONUNBUFFERED="1", **(env or {}))
    full.pop("RAY_ADDRESS", None)
    full.pop("RECRAFT_BACKBONE_DIR", None)
    # a dead server must be found by the preflight, not by MLflow's own minutes of retries
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=150)


@pytest.fixture(scope="module")
def advection_only(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pf-data")
    synth.generate("advection", root, size="tiny", seed=0)   # darcy's file is missing
    return root


def test_paper_profile_without_weights_data_or_tracking_reports_all_and_exits_2(
        tmp_path, advection_only):
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    dead = f"http://127.0.0.1:{_closed_port()}"
    done = _sweep(tmp_path, "--tasks", "advection,darcy", "--profile", "paper", "--data-root",
                  str(advection_only), "--tracking-uri", dead,
                  env={"HF_HOME": str(empty), "TORCH_HOME": str(empty)})
    err = done.stderr
    assert done.returncode == 2, (done.stdout + err)[-3000:]
    assert "preflight: 4 error(s)" in err, err
    # one message each: both bodies (with BackboneNotFound's text), the data file, the server
    assert "backbone 'roberta-base': no weights found on this machine" in err
    assert "backbone 'swin-base': no weights found on this machine" in err
    assert str(empty / "hub" / "models--FacebookAI--roberta-base") in err
    assert "data file for task 'darcy' not found" in err
    assert f"tracking server {dead} does not answer" in err
    assert "Traceback" not in err
    # nothing started: no Tune experiment, no plan, no MLflow run
    sweep_dir = tmp_path / "runs" / "pf"
    assert not (sweep_dir / "tune").exists() and not (sweep_dir / "plan.json").exists()
    assert "Started a local Ray instance" not in done.stdout + err


def test_dead_tracking_server_alone_exits_2_before_ray(tmp_path, advection_only):
    dead = f"http://127.0.0.1:{_closed_port()}"
    done = _sweep(tmp_path, "--tasks", "advection", "--profile", "smoke", "--data-root",
                  str(advection_only), "--tracking-uri", dead)
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    assert "preflight: 1 error(s)" in done.stderr and "does not answer" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs" / "pf" / "tune").exists()


def test_backbone_problem_finds_weights_the_way_load_backbone_does(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("RECRAFT_BACKBONE_DIR", raising=False)
    assert backbone_problem("roberta-tiny") is None and backbone_problem("swin-tiny-random") is None
    missing = backbone_problem("roberta-base")
    assert missing.startswith("backbone 'roberta-base': no weights found")
    assert str(tmp_path / "hf" / "hub" / "models--FacebookAI--roberta-base") in missing
    # a cached snapshot (config.json naming a model type) is found, without loading anything
    snap = tmp_path / "hf" / "hub" / "models--FacebookAI--roberta-base" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert backbone_problem("roberta-base") is None
    assert "does not exist" in backbone_problem(str(tmp_path / "no-such-body"))
    [issue] = local_body_issues({str(tmp_path / "no-such-body"): ["advection/nft"]})
    assert issue.level == "error" and "advection/nft" in issue.why and "check the path" in issue.fix
