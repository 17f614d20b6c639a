"""Issue 13 item 8: provenance that says what really ran.

* a method from a plugin file git does not track is no longer stamped with a clean commit: the
  row has a hash of the method's files, the files with their git state, and ``+dirty``;
* a data file with a PDEBench name but not PDEBench's content (here: 60 samples, as a file
  written by PDEBench's own simulator would have) is ``real (unverified)``, not "the PDEBench
  files": the rows record its size, sample count and md5, and the banner and the leaderboard
  caption say the same thing about it.
"""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import textwrap
from pathlib import Path

import h5py
import pytest

from harness import provenance
from harness.data import synth
from harness.data.download import md5sum
from harness.data.facts import describe_data
from harness.engine.rows import row_meta
from harness.leaderboard import build_leaderboard
from harness.methods.discovery import discover
from harness.profiles import get_profile
from harness.results import normalise
from harness.suites import get_suite
from harness.trial.context import CellSpec

PLUGIN = textwrap.dedent('''
    from harness.methods.contract import Method, Stage
    from harness.methods.space import LogFloat

    class Extra(Method):
        name = "extra-plugin"
        version = "1"
        stages = (Stage("fit", ("fit.lr",)),)

        def search_space(self, task):
            return {"fit.lr": LogFloat(1e-3, 1e-1)}

        def defaults(self, task):
            return {"fit.lr": 1e-2}

        def stage_fit(self, ctx, config, upstream):
            return {"metrics": {}}
''')


def _git(repo: Path, *cmd: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *cmd], cwd=repo,
                   check=True, capture_output=True)


def _plugin(directory: Path, text: str = PLUGIN):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "extra.py").write_text(text)
    return discover(directories=[directory])["extra-plugin"].method


def test_an_untracked_plugin_file_marks_the_commit_dirty_and_its_hash_is_recorded(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README").write_text("x")
    _git(repo, "add", "README")
    _git(repo, "commit", "-qm", "init")
    provenance.git_state.cache_clear()
    method = _plugin(repo / "baselines")
    prov = provenance.method_provenance(method, root=repo, commit="abc123")
    assert prov["git_commit"] == "abc123+dirty"                 # before: "abc123", clean
    assert prov["method_files"] == "baselines/extra.py (untracked)"
    assert len(prov["method_hash"]) == 16

    _git(repo, "add", "baselines/extra.py")
    _git(repo, "commit", "-qm", "plugin")
    provenance.git_state.cache_clear()
    tracked = provenance.method_provenance(method, root=repo, commit="def456")
    assert tracked == {"git_commit": "def456", "method_hash": prov["method_hash"],
                       "method_files": "baselines/extra.py (tracked)"}

    changed = _plugin(repo / "baselines", PLUGIN.replace('version = "1"', 'version = "2"'))
    provenance.git_state.cache_clear()
    edited = provenance.method_provenance(changed, root=repo, commit="def456")
    assert edited["git_commit"] == "def456+dirty" and "(modified)" in edited["method_files"]
    assert edited["method_hash"] != prov["method_hash"]
    provenance.git_state.cache_clear()


def test_rows_carry_the_method_hash_and_the_data_file_facts(tmp_path):
    method = _plugin(tmp_path / "plugins")
    task = get_suite("pdebench")["advection"]
    synth.generate("advection", tmp_path / "data", size="tiny", seed=0)
    facts = describe_data(task, tmp_path / "data")
    cell = CellSpec(sweep="s", suite="pdebench", task="advection", method=method.name,
                    profile=get_profile("smoke"))
    meta = row_meta(cell, method, task, facts.source, "s", data=facts)
    row = meta["row"]
    assert row["method_hash"] == provenance.method_provenance(method)["method_hash"]
    assert row["method_files"].endswith("extra.py (outside the repository)")
    path = Path(facts.path)
    assert (row["data_bytes"], row["data_md5"]) == (path.stat().st_size, md5sum(path))
    with h5py.File(path) as f:
        assert row["data_samples"] == f["tensor"].shape[0]
    assert row["data_check"] is None and facts.label == "synthetic"
    assert meta["tags"]["harness.data"] == "synthetic"
    normalise([dict(row, phase="final", split="test", value=0.1)])     # known columns only


def _simulator_file(tmp_path: Path) -> Path:
    """A file with the published name and layout but not the published content: 60 samples and
    no synthetic marker, as PDEBench's own simulator writes them."""
    made = tmp_path / "made"
    synth.generate("advection", made, size="small", seed=0)
    src = next(made.rglob("*.hdf5"))
    root = tmp_path / "pdebench"
    dest = root / src.relative_to(made)
    dest.parent.mkdir(parents=True)
    with h5py.File(src) as f, h5py.File(dest, "w") as g:
        for key in f:
            g.create_dataset(key, data=f[key][...][:60] if key == "tensor" else f[key][...])
        for k, v in f.attrs.items():
            if k != "synthetic":
                g.attrs[k] = v
    return dest


def test_real_looking_files_are_verified_only_against_the_catalog(tmp_path):
    path = _simulator_file(tmp_path)
    task = get_suite("pdebench")["advection"]
    cache = tmp_path / "md5-cache.json"
    facts = describe_data(task, tmp_path / "pdebench", md5_cache=cache)
    assert facts.label == "real (unverified)"
    assert facts.why == "60 samples; the published file has 10000"
    assert (facts.samples, facts.bytes, facts.md5) == (60, path.stat().st_size, md5sum(path))
    # the same file matched against a catalog entry that publishes it: verified
    published = dataclasses.replace(task.file, md5=md5sum(path),
                                    real_sizes=dict(task.file.real_sizes, N=60))
    assert describe_data(dataclasses.replace(task, file=published), tmp_path / "pdebench",
                         md5_cache=cache).label == "real (verified)"
    assert str(path.resolve()) in cache.read_text()             # hashed once, then cached
    wrong = dataclasses.replace(published, md5="0" * 32)
    other = describe_data(dataclasses.replace(task, file=wrong), tmp_path / "pdebench",
                          md5_cache=cache)
    assert other.check == "unverified" and other.why.startswith(f"md5 {md5sum(path)} is not")


def test_banner_and_leaderboard_say_what_the_data_are(tmp_path):
    """Before: the banner said "synthetic data" and the leaderboard "real (the PDEBench files)"
    over the same 60-sample files."""
    from harness.sweep.cli import build_parser
    from harness.sweep.planning import ensure_data, plan_sweep
    from harness.sweep.report import banner

    _simulator_file(tmp_path)
    args = build_parser().parse_args(["--tasks", "advection", "--methods", "nft", "--profile",
                                      "smoke", "--data-root", str(tmp_path / "pdebench"),
                                      "--runs-dir", str(tmp_path / "runs")])
    sp = plan_sweep(args)
    root = ensure_data(sp, log=lambda *a: None)
    text = banner(sp, root, "sqlite:///x.db")
    assert "synthetic data" not in text
    assert "real (unverified): advection (60 samples; the published file has 10000)" in text

    rows = [dict(sweep="s", suite="pdebench", task=t, task_version="1", method=m,
                 method_version="1", phase="final", split="test", seed=s, metric="nrmse",
                 value=v, direction="min", status="ok", data_source="real", data_check=check)
            for t, check in (("advection", "unverified"), ("burgers", "verified"))
            for m, v in (("a", 0.1), ("b", 0.2)) for s in (1, 2)]
    caption = build_leaderboard(normalise(rows), "real").caption
    assert "real (unverified: the files of advection were not matched" in caption
    assert "the PDEBench files" not in caption
    verified = [dict(r, data_check="verified") for r in rows]
    assert "real (verified: every file has PDEBench's published sample count and md5)" in \
        build_leaderboard(normalise(verified), "real").caption
