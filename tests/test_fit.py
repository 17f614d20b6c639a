"""The harness's fit routine (harness.trial.fit) as a method's stage uses it: ``ctx.fit``.

A toy method (a linear map on in-memory arrays, run through the real trial loop) checks what the
harness promises a method: only ``requires_grad`` parameters train, parameter groups keep their
options, a resumed trial equals an uninterrupted one, the final phase reads test once with the
best-on-validation weights, and ``stage_output`` is what the stage returns. The settings rules
(task values, profile, a method's ``fit_defaults``, methods without a pretrained body) are checked
on real tasks.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.data.taskdata import TaskData
from harness.methods.contract import Method, Stage
from harness.methods.space import MAIN_LR, Fixed, LogFloat, check_in_space
from harness.profiles import PROFILES
from harness.suites import get_suite
from harness.trial.context import CellSpec, TrialContext
from harness.trial.fit import SCRATCH_DEFAULTS, FitResult, FitSettings, fit_settings
from harness.trial.loop import SEED_KEY, run_local, trial_body
from harness.trial.session import LocalSession
from harness.trial.training import evaluate, make_optimizer
from search_spaces.common import (finetune_defaults, specialist_defaults, specialist_space)

torch.set_num_threads(1)
TASK = "advection"
PROFILE = PROFILES["quick"].with_overrides(finetune_epochs=6, batch_size=4)
LENGTH = 8
KEYS = ("finetune.lr", "finetune.weight_decay")


def toy_data(n: int = 16, seed: int = 0) -> TaskData:
    """Training teaches y = 2x, validation wants y = x: the best validation epoch is mid-run."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3 * n, 1, LENGTH)).astype(np.float32)
    xs = {"train": x[:n], "val": x[n:2 * n], "test": x[2 * n:]}
    ys = {"train": 2 * x[:n], "val": x[n:2 * n], "test": 1.2 * x[2 * n:]}
    return TaskData(task=TASK, task_version="1", source="synthetic", path=Path("toy"), x=xs, y=ys,
                    indices={k: np.arange(len(v)) for k, v in xs.items()})


class Toy(Method):
    """Two linear layers; the first can be frozen (``requires_grad`` off) by the method."""

    name = "toy-fit"
    version = "1"
    summary = "a toy method that trains through ctx.fit"
    uses_body = False
    stages = (Stage("finetune", KEYS),)
    freeze_first = False
    groups = False

    def search_space(self, task):
        return {"finetune.lr": LogFloat(1e-3, 1e-1), "finetune.weight_decay": Fixed(0.0)}

    def defaults(self, task):
        return {"finetune.lr": 5e-2, "finetune.weight_decay": 0.0}

    def build(self):
        torch.manual_seed(0)
        first, second = nn.Linear(LENGTH, LENGTH), nn.Linear(LENGTH, LENGTH, bias=False)
        nn.init.zeros_(second.weight)
        return nn.Sequential(nn.Flatten(), first, second, nn.Unflatten(1, (1, LENGTH)))

    def stage_finetune(self, ctx, config, upstream):
        model = self.build()
        if self.freeze_first:
            model[1].requires_grad_(False)
        params = None
        if self.groups:   # the second layer at a tenth of the lr
            params = [{"params": model[1].parameters()},
                      {"params": model[2].parameters(), "lr": 5e-3}]
        return ctx.fit(model, config, params=params).stage_output()


def cell(method, phase="search") -> CellSpec:
    return CellSpec(sweep="t", suite="pdebench", task=TASK, method=method.name, profile=PROFILE,
                    phase=phase)


def run(method, phase="search", on_report=None, seed=0):
    cfg = {**method.defaults(get_suite("pdebench")[TASK]), SEED_KEY: seed}
    return run_local(cell(method, phase), method, toy_data(), cfg, on_report=on_report)


def keep_states(states):
    def on_report(metrics, checkpoint_dir):
        states.append(torch.load(Path(checkpoint_dir) / "state.pt", weights_only=False))
    return on_report


# ----------------------------------------------------------------------------- the loop
def test_fit_trains_only_parameters_with_requires_grad():
    method = Toy()
    method.freeze_first = True
    states = []
    out = run(method, on_report=keep_states(states))
    assert out["status"] == "ok" and len(states) == 6
    first, last = states[0]["model"], states[-1]["model"]
    init = method.build().state_dict()
    assert all(torch.equal(last[k], init[k]) for k in ("1.weight", "1.bias"))
    assert not torch.equal(first["2.weight"], last["2.weight"])
    # the optimizer never held the frozen layer
    assert len(states[-1]["optimizer"]["param_groups"][0]["params"]) == 1


def test_parameter_groups_keep_their_options():
    method = Toy()
    method.groups = True
    states = []
    out = run(method, on_report=keep_states(states))
    assert out["status"] == "ok"
    groups = states[0]["optimizer"]["param_groups"]
    assert [g["initial_lr"] for g in groups] == [5e-2, 5e-3]     # the default lr, the group's own


def test_a_resumed_trial_equals_an_uninterrupted_one(tmp_path):
    method = Toy()
    saved = tmp_path / "ckpt"

    def keep_third(metrics, checkpoint_dir):
        if metrics["epoch"] == 3:
            shutil.copytree(checkpoint_dir, saved)

    full = run(method, phase="final", on_report=keep_third)
    cfg = {**method.defaults(get_suite("pdebench")[TASK]), SEED_KEY: 0}
    resumed = trial_body(LocalSession(checkpoint=saved), cell(method, "final"), method, toy_data(),
                         cfg)
    assert [r["epoch"] for r in resumed["history"]] == [4, 5, 6]
    for a, b in zip(full["history"][3:], resumed["history"]):
        assert a["val_nrmse"] == b["val_nrmse"] and a["train_loss"] == b["train_loss"]
    assert resumed["metrics"] == full["metrics"]


def test_the_final_phase_reads_test_with_the_best_validation_weights():
    method = Toy()
    states = []
    out = run(method, phase="final", on_report=keep_states(states))
    m = out["metrics"]
    vals = [r["val_nrmse"] for r in out["history"]]
    assert 1 < m["best_epoch"] < 6 and m["val_nrmse"] == min(vals)    # the best is mid-run
    assert vals.index(min(vals)) + 1 == m["best_epoch"]
    x, y = toy_data().split("test")
    best, last = method.build(), method.build()
    best.load_state_dict(states[m["best_epoch"] - 1]["model"])
    last.load_state_dict(states[-1]["model"])
    assert m["test_nrmse"] == pytest.approx(evaluate(best, x, y, "nrmse", "cpu"), rel=1e-6)
    assert m["test_nrmse_last"] == pytest.approx(evaluate(last, x, y, "nrmse", "cpu"), rel=1e-6)
    assert m["test_nrmse"] != pytest.approx(m["test_nrmse_last"])
    # the last report carries the same test values (data-parallel runs read it from there)
    assert out["history"][-1]["test_nrmse"] == m["test_nrmse"]
    assert out["history"][-1]["best_epoch"] == m["best_epoch"]
    assert "test_nrmse" not in run(method)["metrics"]                  # the search never does


def test_stage_output_is_the_one_source_of_final_metrics():
    res = FitResult(best_epoch=3, best_val=0.5, last_val=0.6, history=[{"epoch": 1}], test=0.4,
                    test_last=0.45, metric="rmse")
    assert res.stage_output() == {
        "metrics": {"val_rmse": 0.5, "best_epoch": 3, "test_rmse": 0.4, "test_rmse_last": 0.45},
        "finetune_history": [{"epoch": 1}]}
    search = FitResult(best_epoch=2, best_val=0.5, last_val=0.6, history=[])
    assert search.stage_output()["metrics"] == {"val_nrmse": 0.5, "best_epoch": 2}


def test_make_optimizer_refuses_a_model_with_nothing_to_train():
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        make_optimizer("adam", frozen.parameters(), 1e-3, 0.0)


# ----------------------------------------------------------------------------- settings
def context(method, task: str = TASK, profile=PROFILE) -> TrialContext:
    return TrialContext(task=get_suite("pdebench")[task], data=toy_data(), profile=profile,
                        method=method, seed=0, phase="search", session=LocalSession())


@pytest.mark.parametrize("task", ["advection", "darcy", "diffusion-reaction-1d"])
def test_settings_of_a_body_method_are_the_task_values_the_profile_and_the_config(task):
    from baselines.nft import NaiveFineTuning as NFT

    t = get_suite("pdebench")[task]
    for prof in (PROFILES["quick"], PROFILES["paper"]):
        s = fit_settings(context(NFT(), task, prof), {"finetune.lr": 2e-4,
                                                      "finetune.weight_decay": 1e-5})
        d = t.defaults
        assert s.optimizer == (prof.finetune_optimizer or d.optimizer)
        assert s.lr == pytest.approx(2e-4 * prof.lr_factor(d.lr))
        assert (s.weight_decay, s.grad_clip, s.train_loss) == (1e-5, d.grad_clip, d.train_loss)
        assert (s.epochs, s.paper_epochs, s.batch_size) == (prof.epochs(d.epochs), d.epochs,
                                                            prof.batch_size or d.batch_size)
        assert (s.metric, s.direction) == (t.metric.name, t.metric.direction)


def test_a_method_without_body_gets_its_own_optimizer_and_an_unscaled_lr():
    method = Toy()
    quick = PROFILES["quick"]
    assert quick.finetune_optimizer == "adamw" and quick.lr_factor(1e-4) != 1.0
    s = fit_settings(context(method, "darcy", quick), specialist_defaults(None))
    assert (s.optimizer, s.grad_clip) == (SCRATCH_DEFAULTS["optimizer"], None)
    assert (s.lr, s.weight_decay) == (1e-3, 1e-4)
    assert s.epochs == quick.epochs(100) and s.batch_size == quick.batch_size   # same budget


def test_fit_defaults_apply_on_top_and_may_not_change_the_budget():
    method = Toy()
    method.fit_defaults = {"optimizer": "sgd", "grad_clip": 0.5, "warmup_epochs": 0}
    s = fit_settings(context(method), specialist_defaults(None))
    assert (s.optimizer, s.grad_clip, s.warmup_epochs) == ("sgd", 0.5, 0)
    method.fit_defaults = {"epochs": 500}
    with pytest.raises(ValueError, match=r"toy-fit.*may not set \['epochs'\]"):
        fit_settings(context(method), {})
    method.fit_defaults = {"optimiser": "adam"}
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['optimiser'\]"):
        fit_settings(context(method), {})


def test_specialist_space_is_centred_on_the_papers_lr_and_pairs_draws():
    task = get_suite("pdebench")["darcy"]
    space = specialist_space(task)
    lr = space["finetune.lr"]
    assert isinstance(lr, LogFloat) and lr.role == MAIN_LR
    assert math.sqrt(lr.low * lr.high) == pytest.approx(1e-3)
    assert space["finetune.weight_decay"] == Fixed(1e-4)
    assert check_in_space(specialist_defaults(task), space) == []
    assert set(space) == set(finetune_defaults(task))     # the same keys as the shared space


# ----------------------------------------------------------------------------- RECRAFT and NFT
@pytest.mark.parametrize("method_name", ["nft", "recraft"])
def test_the_family_models_are_fully_trainable_at_stage_two(method_name, tmp_path):
    """Fit no longer switches every parameter on; the family's stage-2 models have none off, so
    their results are the same as when it did (checked on a 1D and a 2D task)."""
    from harness.data.synth import generate
    from harness.methods.discovery import get_method
    from harness.trial.data import load_for_phase

    method = get_method(method_name)
    prof = PROFILES["smoke"].with_overrides(max_train_samples=4, max_eval_samples=2)
    for task in ("advection", "darcy"):
        generate(task, tmp_path, size="tiny", seed=0)
        t = get_suite("pdebench")[task]
        ctx = context(method, task, prof)
        ctx.data = load_for_phase(t, tmp_path, prof, "search")
        model = method._model(ctx, align=method.aligns)
        flags = {n: p.requires_grad for n, p in model.named_parameters()}
        assert flags and all(flags.values()), [n for n, f in flags.items() if not f]


def test_settings_are_a_frozen_dataclass():
    s = FitSettings()
    with pytest.raises(Exception):
        s.lr = 1.0  # type: ignore[misc]


# ----------------------------------------------------------------------------- grids
def test_every_pdebench_task_reads_input_and_target_on_one_grid(tmp_path):
    from harness.data.synth import generate

    for name, task in get_suite("pdebench").items():
        generate(name, tmp_path, size="tiny", seed=0)
        data = task.load(tmp_path, splits=("train",))
        assert data.input_shape[1:] == data.output_shape[1:], name


def test_resample_to_interpolates_onto_the_target_grid():
    from harness.trial.grid import resample_to

    ramp = torch.linspace(0, 1, 16).reshape(1, 1, 16)
    assert resample_to(ramp, (16,)) is ramp                           # already there: unchanged
    coarse = resample_to(ramp, (8,))
    assert coarse.shape == (1, 1, 8) and torch.all(coarse.diff() > 0)
    img = torch.ones(2, 3, 10, 12)
    assert torch.allclose(resample_to(img, (16, 16)), torch.ones(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(batch, channels, \*spatial\)"):
        resample_to(img, (16,))


class Coarse(Toy):
    """Predicts on half the target grid; wraps itself in OnTargetGrid when ``wrap`` is set."""

    name = "toy-coarse"
    wrap = False

    def build(self):
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(LENGTH, LENGTH // 2),
                             nn.Unflatten(1, (1, LENGTH // 2)))

    def stage_finetune(self, ctx, config, upstream):
        from harness.trial.grid import OnTargetGrid

        model = self.build()
        if self.wrap:
            model = OnTargetGrid(model, ctx.data.output_shape[1:])
        return ctx.fit(model, config).stage_output()


def test_fit_refuses_a_prediction_on_another_grid_and_the_wrapper_fixes_it():
    method = Coarse()
    with pytest.raises(ValueError, match=r"grid \(4,\) but the task's targets lie on \(8,\).*"
                                         r"OnTargetGrid"):
        run(method)
    method.wrap = True
    out = run(method)
    assert out["status"] == "ok" and math.isfinite(out["metrics"]["val_nrmse"])
