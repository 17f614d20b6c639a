"""docs/adding-a-baseline.md works as written: its example files load, list, honour the contract
and run end to end through the harness's own trial loop.

Each fenced ```python block introduced by ``<!-- example: baselines/<file>.py -->`` is written into
a temporary folder (never into ``baselines/``) and discovered from there.
"""
from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from harness.methods.discovery import discover
from harness.methods.space import check_in_space, searched, to_optuna, to_tune
from harness.profiles import PROFILES
from harness.suites import get_suite
from harness.trial.context import CellSpec
from harness.trial.data import load_for_phase
from harness.trial.loop import SEED_KEY, run_local, trial_body
from harness.trial.session import LocalSession

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-a-baseline.md"
EXAMPLE = re.compile(r"<!-- example: (baselines/[\w.-]+\.py) -->\s*\n```python\n(.*?)\n```", re.S)
MAIN_EXAMPLE = "frozen-body"          # the one-file method of the walk-through (§6)
TASKS = list(get_suite("pdebench").values())
TINY = PROFILES["quick"].with_overrides(finetune_epochs=2, max_train_samples=8, max_eval_samples=4,
                                        source_samples=16, source_head_epochs=1, batch_size=4)
TASK_1D = "advection"


def doc_examples() -> dict[str, str]:
    """``{"baselines/<file>.py": source}`` for every marked example of the doc."""
    return dict(EXAMPLE.findall(DOC.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def drafts(tmp_path_factory) -> Path:
    """The doc's example files, written into a temporary plugin folder."""
    d = tmp_path_factory.mktemp("drafts")
    for rel, source in doc_examples().items():
        (d / Path(rel).name).write_text(source + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def methods(drafts):
    entries = discover([drafts])
    broken = {n: e.error for n, e in entries.items() if not e.available}
    assert not broken, f"doc examples that do not load: {broken}"
    return {n: e.method for n, e in entries.items()}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from harness.data.synth import generate

    root = tmp_path_factory.mktemp("tiny-pdebench")
    generate(TASK_1D, root, size="tiny", seed=0)
    return root


def _cell(method, phase: str = "search") -> CellSpec:
    return CellSpec(sweep="local", suite="pdebench", task=TASK_1D, method=method.name, profile=TINY,
                    phase=phase)


def _data(root, phase: str = "search"):
    return load_for_phase(get_suite("pdebench")[TASK_1D], root, TINY, phase)


# ----------------------------------------------------------------------------- the doc itself
def test_doc_has_the_one_file_example():
    examples = doc_examples()
    assert "baselines/frozen_body.py" in examples
    for rel, source in examples.items():
        compile(source, rel, "exec")                     # a syntax error names the doc's file
        assert "class " in source and "name = " in source


def test_examples_are_discovered_from_a_temporary_folder(drafts, methods):
    assert MAIN_EXAMPLE in methods and "recraft-sinkhorn" in methods
    for m in methods.values():
        assert m.contract_problems() == []
        assert m.version == "1"
    entries = discover([drafts])
    assert entries[MAIN_EXAMPLE].origin == str(drafts / "frozen_body.py")
    # written to a temporary folder, not into the repository's baselines/
    assert not any(Path(e.origin).parent == ROOT / "baselines" for e in entries.values())


def test_examples_appear_in_harness_list(drafts, capsys):
    from harness.list import main

    assert main(["methods", "--baselines-dir", str(drafts)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    cols = rows[MAIN_EXAMPLE].split()
    assert cols[1:5] == ["1", "finetune", "2", "inf"]                # version, stage, searched, size
    assert rows[MAIN_EXAMPLE].endswith(f"ok ({drafts / 'frozen_body.py'})")
    assert "align -> finetune" in rows["recraft-sinkhorn"] and "UNAVAILABLE" not in rows["recraft-sinkhorn"]


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_examples_honour_the_contract(methods, task):
    for name, m in methods.items():
        space = m.search_space(task)
        assert set(space) <= m.consumed(), f"{name}: unconsumed {set(space) - m.consumed()}"
        assert check_in_space(m.defaults(task), space) == []
        assert check_in_space(m.test_config(task), space) == []
        assert set(to_optuna(space)) == set(searched(space))
        assert set(to_tune(space)) == set(space)
        assert m.supports(task) == (True, "")


# ----------------------------------------------------------------------------- end to end
def test_frozen_body_runs_through_the_harness_loop(methods, tiny_root):
    m = methods[MAIN_EXAMPLE]
    task = get_suite("pdebench")[TASK_1D]
    out = run_local(_cell(m), m, _data(tiny_root), {**m.test_config(task), SEED_KEY: 0})
    assert out["status"] == "ok", out.get("error")
    val = out["metrics"]["val_nrmse"]
    assert math.isfinite(val)
    assert [row["epoch"] for row in out["history"]] == [1, 2]
    assert val == pytest.approx(min(row["val_nrmse"] for row in out["history"]))
    assert "test_nrmse" not in out["metrics"]              # the search never reads test
    assert set(out["stage_seconds"]) == {"finetune"}


def test_frozen_body_final_phase_returns_the_test_metric(methods, tiny_root):
    m = methods[MAIN_EXAMPLE]
    task = get_suite("pdebench")[TASK_1D]
    out = run_local(_cell(m, "final"), m, _data(tiny_root, "final"), {**m.defaults(task), SEED_KEY: 1})
    assert out["status"] == "ok", out.get("error")
    assert math.isfinite(out["metrics"]["test_nrmse"]) and math.isfinite(out["metrics"]["test_nrmse_last"])
    assert out["history"][-1]["test_nrmse"] == out["metrics"]["test_nrmse"]   # the last report carries it


def test_frozen_body_trains_only_embedder_head_and_norms(methods, tiny_root):
    """What the doc says the method does: between two epochs' checkpoints only the embedder (and
    the body's LayerNorms, the default) change; every other body weight stays as loaded."""
    m = methods[MAIN_EXAMPLE]
    task = get_suite("pdebench")[TASK_1D]
    states = []

    def keep(metrics, checkpoint_dir):
        states.append(torch.load(Path(checkpoint_dir) / "state.pt", weights_only=False)["model"])

    out = run_local(_cell(m), m, _data(tiny_root), {**m.defaults(task), SEED_KEY: 0}, on_report=keep)
    assert out["status"] == "ok" and len(states) == 2
    first, second = states
    changed = {k for k in first if not torch.equal(first[k], second[k])}
    assert any(k.startswith("embedder.") for k in changed)
    body_changed = {k for k in changed if k.startswith("body.")}
    assert body_changed and all("LayerNorm" in k for k in body_changed), sorted(body_changed)


def test_frozen_body_resumes_from_its_checkpoint(methods, tiny_root, tmp_path):
    m = methods[MAIN_EXAMPLE]
    task = get_suite("pdebench")[TASK_1D]
    saved = tmp_path / "ckpt"

    def keep_first(metrics, checkpoint_dir):
        if metrics["epoch"] == 1:
            shutil.copytree(checkpoint_dir, saved)

    cfg = {**m.test_config(task), SEED_KEY: 0}
    full = run_local(_cell(m), m, _data(tiny_root), cfg, on_report=keep_first)
    resumed = trial_body(LocalSession(checkpoint=saved), _cell(m), m, _data(tiny_root), cfg)
    assert resumed["status"] == "ok"
    assert [row["epoch"] for row in resumed["history"]] == [2]       # epoch 1 was not redone
    assert resumed["history"][0]["val_nrmse"] == pytest.approx(full["history"][1]["val_nrmse"], rel=1e-4)


def test_run_one_and_the_sweep_find_examples_placed_in_baselines(tmp_path, monkeypatch, tiny_root,
                                                                 capsys):
    """With the files in (a stand-in for) ``baselines/``, the doc's ``run_one`` call and the sweep's
    ``--methods frozen-body,nft --dry-run`` work by name."""
    import harness.methods.discovery as discovery
    from harness.sweep import main as sweep_main
    from recraft.run import run_one

    fake = tmp_path / "baselines"
    fake.mkdir()
    for rel, source in doc_examples().items():
        (fake / Path(rel).name).write_text(source + "\n", encoding="utf-8")
    shutil.copy(ROOT / "baselines" / "nft.py", fake / "nft.py")
    monkeypatch.setattr(discovery, "BASELINES_DIR", fake)

    out = run_one("recraft-sinkhorn", TASK_1D, tiny_root, profile=TINY, test_config=True)
    assert out["status"] == "ok" and math.isfinite(out["metrics"]["val_nrmse"])
    assert [row["epoch"] for row in out["history"]] == [1, 2]

    assert sweep_main(["--suite", "pdebench", "--methods", "frozen-body,nft", "--tasks", TASK_1D,
                       "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 0
    text = capsys.readouterr().out
    assert re.search(r"frozen-body\s+v1\s+stages finetune", text)
    assert re.search(r"advection\s+planned\s+planned", text)
