"""The nasbench360 suite: tasks, targets, Table 8 defaults, metrics, versions, listing."""
from __future__ import annotations

import dataclasses

import pytest

from harness.list import main as list_main
from harness.suites import get_suite, select_tasks

# RECRAFT Table 8 (docs/paper-tables.md, docs/nasbench360.md): batch, epochs, accum, optimiser, LR, WD,
# τ, FLD epochs
TABLE8 = {
    "cifar100": (32, 60, 32, "sgd", 1e-4, 1e-3, 0.3, 4),
    "spherical": (32, 60, 4, "adamw", 1e-4, 1e-1, 0.3, 4),
    "ninapro": (32, 60, 1, "adam", 1e-4, 1e-5, 0.3, 4),
    "fsd50k": (32, 100, 1, "adam", 1e-4, 5e-5, 0.3, 4),
    "darcy-flow": (4, 100, 1, "adamw", 1e-3, 5e-3, 0.3, 4),
    "psicov": (1, 10, 32, "adam", 5e-6, 1e-5, 0.5, 4),
    "cosmic": (4, 60, 1, "adamw", 1e-3, 0.0, 0.3, 4),
    "ecg": (4, 15, 16, "sgd", 1e-6, 1e-1, 0.5, 2),
    "satellite": (16, 60, 4, "adamw", 3e-5, 3e-6, 0.5, 4),
    "deepsea": (16, 13, 1, "adam", 1e-5, 0.0, 0.5, 2),
}
KINDS = {"cifar100": ("classification", 100), "spherical": ("classification", 100),
         "ninapro": ("classification", 18), "fsd50k": ("multilabel", 200),
         "darcy-flow": ("dense_regression", None), "psicov": ("dense_regression", None),
         "cosmic": ("dense_segmentation", 1), "ecg": ("classification", 4),
         "satellite": ("classification", 24), "deepsea": ("multilabel", 36)}

# pdebench task versions before the second suite generalised the task types (they must not move;
# diffusion-sorption's changed once, on purpose: its epsilon became RoBERTa's 0.5, docs/divergences.md)
PDEBENCH_VERSIONS = {
    "advection": "44c5cd681497", "burgers": "bb5dd5876c53", "diffusion-reaction-1d": "ebdd130dbb7a",
    "diffusion-sorption": "1d14629b3038", "navier-stokes-1d": "c8f56ce367c8",
    "darcy": "e5a5f187aa49", "shallow-water": "3856c2a25c8e", "diffusion-reaction-2d": "d142068d06fa",
}


def test_ten_tasks_in_paper_order_with_their_targets():
    tasks = get_suite("nasbench360")
    assert list(tasks) == list(TABLE8)
    for name, (kind, k) in KINDS.items():
        t = tasks[name]
        assert (t.kind, t.head.num_classes) == (kind, k), name
        assert t.suite == "nasbench360" and t.metric.direction == "min"
    assert tasks["fsd50k"].head.pos_weight == 10.0 and tasks["deepsea"].head.pos_weight == 4.0
    assert {n for n, t in tasks.items() if t.modality == "1d"} == {"ecg", "satellite", "deepsea"}


def test_table8_defaults_and_config_schedule():
    tasks = get_suite("nasbench360")
    for name, (batch, epochs, accum, opt, lr, wd, tau, fld) in TABLE8.items():
        d = tasks[name].defaults
        assert (d.batch_size, d.epochs, d.grad_accum, d.optimizer) == (batch, epochs, accum, opt), name
        assert (d.lr, d.weight_decay, d.epsilon, d.fld_epochs) == (lr, wd, tau, fld), name
        assert d.betas == (0.9, 0.98) and d.fa_epochs == 60
    assert tasks["ecg"].defaults.momentum == 0.99 and tasks["cifar100"].defaults.momentum == 0.9
    assert tasks["deepsea"].defaults.warmup_epochs == 10 and tasks["deepsea"].defaults.decay_epochs == 25
    assert {n for n, t in tasks.items() if t.defaults.grad_clip} == {"ninapro", "deepsea"}
    # label discretisation only for the regression/segmentation tasks
    assert {n for n, t in tasks.items() if t.defaults.n_label_classes} == {"darcy-flow", "psicov", "cosmic"}
    assert tasks["ecg"].defaults.target_seq_len == 64


def test_error_rates_display_in_percent():
    m = get_suite("nasbench360")["ninapro"].metric
    assert m.display(0.066) == "6.60" and m.display(float("nan")) == "nan"
    assert get_suite("nasbench360")["deepsea"].metric.display(0.27834) == "0.278"
    assert get_suite("pdebench")["darcy"].metric.display(0.0123456) == "0.0123"


def test_pdebench_versions_unchanged_and_nasbench360_versions_distinct():
    assert {n: t.version for n, t in get_suite("pdebench").items()} == PDEBENCH_VERSIONS
    tasks = get_suite("nasbench360")
    versions = {t.version for t in tasks.values()}
    assert len(versions) == 10 and not versions & set(PDEBENCH_VERSIONS.values())
    t = tasks["ecg"]
    moved = dataclasses.replace(t, construction=dataclasses.replace(
        t.construction, params={**t.construction.params, "window": 500}))
    assert moved.version != t.version
    assert dataclasses.replace(t, split=dataclasses.replace(t.split, val_seed=1)).version != t.version


def test_task_names_are_unique_across_suites_and_selectable():
    assert not set(get_suite("pdebench")) & set(get_suite("nasbench360"))
    assert [t.name for t in select_tasks("nasbench360", "ecg,cifar100")] == ["cifar100", "ecg"]
    with pytest.raises(ValueError, match="did you mean 'deepsea'"):
        select_tasks("nasbench360", "deepse")


def test_harness_list_shows_the_suite(capsys):
    assert list_main(["tasks", "--suite", "nasbench360"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 11
    row = next(line for line in out if line.startswith("fsd50k"))
    assert "multilabel" in row and "map_error↓" in row and "fsd/chunks/tr.csv" in row
    assert list_main(["suites"]) == 0
    assert "nasbench360: 10 tasks" in capsys.readouterr().out


def test_quick_profile_adjusted_for_nasbench360_only(tmp_path):
    """NAS-Bench-360's quick default fine-tunes for 10 epochs (its 900-s budget, issue 15 item 7);
    PDEBench's quick default and the unadjusted profiles are unchanged, and the sweep's plan and
    ``run_one`` both pick the suite's profile."""
    from harness.profiles import PROFILES, get_profile
    from harness.sweep.cli import build_parser
    from harness.sweep.planning import plan_sweep

    nb = get_profile("quick", suite="nasbench360")
    assert (nb.name, nb.finetune_epochs, nb.grace_period) == ("quick", 10, 3)
    assert get_profile("quick", suite="pdebench") is PROFILES["quick"]
    assert get_profile("quick") is PROFILES["quick"]
    assert PROFILES["quick"].finetune_epochs == 20 and PROFILES["quick"].grace_period == 5
    assert get_profile("paper", suite="nasbench360") is PROFILES["paper"]
    # everything else about the quick profile is the same for both suites
    same = {f.name for f in dataclasses.fields(nb)} - {"finetune_epochs", "grace_period"}
    assert all(getattr(nb, k) == getattr(PROFILES["quick"], k) for k in same)

    for suite, epochs in (("nasbench360", 10), ("pdebench", 20)):
        args = build_parser().parse_args(["--suite", suite, "--runs-dir", str(tmp_path / "runs")])
        sp = plan_sweep(args)
        assert (sp.profile.finetune_epochs, sp.name) == (epochs, f"{suite}-quick")


def test_run_one_uses_the_suites_profile(tmp_path, monkeypatch):
    import recraft.run as run_mod

    seen = {}

    def fake_run_local(cell, method, data, config, on_report=None):
        seen["profile"] = cell.profile
        return {"metrics": {}}

    monkeypatch.setattr(run_mod, "run_local", fake_run_local)
    monkeypatch.setattr(run_mod, "load_for_phase",
                        lambda task, root, prof, phase: type("D", (), {"source": "synthetic"})())
    run_mod.run_one("nft", "satellite", tmp_path, suite="nasbench360")
    assert seen["profile"].finetune_epochs == 10
