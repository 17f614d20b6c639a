"""Methods on the ``nasbench360`` tasks: heads, losses, stage-1 classes, whole-split metrics with
the split's extras, the floors, and which cells each method supports."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.suites import get_suite

NB = get_suite("nasbench360")
FLOORS = {"mean", "ridge", "persistence", "majority", "logistic"}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from harness.data import synth

    root = tmp_path_factory.mktemp("nb360tiny")
    synth.generate_suite(root, size="tiny", tasks=("satellite", "cosmic", "deepsea", "psicov"),
                         progress=None)
    return root


# ---- targets: heads, losses, standardisation, stage-1 classes -------------------------------

def test_heads_are_sized_from_the_task():
    from recraft.targets import head_output

    class Data:
        output_shape = (1, 32, 32)

    assert head_output(NB["cifar100"], Data) == 100      # not from the (10-class) stand-in
    assert head_output(NB["fsd50k"], Data) == 200
    assert head_output(NB["ecg"], Data) == 4
    assert head_output(NB["cosmic"], Data) == (1, 32, 32)
    with pytest.raises(ValueError, match="expected \\(C, L\\) or \\(C, H, W\\)"):
        Data.output_shape = (5,)
        head_output(NB["darcy-flow"], Data)


def test_training_losses_carry_the_upstream_weights():
    from recraft.targets import training_loss

    logits = torch.tensor([[0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0]])
    # BCE with pos_weight 4 (DeepSEA): label 1 costs 4·log 2, label 0 costs log 2, mean 2.5·log 2
    assert float(training_loss(NB["deepsea"])(logits, target)) == pytest.approx(2.5 * np.log(2))
    ce = training_loss(NB["satellite"])(torch.tensor([[2.0, 0.0]]), torch.tensor([1.0]))
    assert float(ce) == pytest.approx(np.log(1 + np.exp(2.0)))
    # PDEBench keeps its field loss and ignores extras
    from harness.suites import get_suite as gs

    nrmse = training_loss(gs("pdebench")["advection"])
    assert float(nrmse(torch.ones(2, 1, 4) * 2, torch.ones(2, 1, 4), ignore=None)) == pytest.approx(1.0)


def test_only_regression_outputs_are_standardised():
    from recraft.targets import standardization_for

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(20, 1, 8)).astype(np.float32)
    y = np.arange(20) % 4
    st = standardization_for(NB["satellite"], x, y)
    assert float(st["y_shift"]) == 0.0 and float(st["y_scale"]) == 1.0
    assert st["x_shift"].shape == (1, 1, 8) and float(st["x_scale"]) == pytest.approx(x.std(), rel=0.2)
    yd = np.random.default_rng(1).normal(5.0, 1.0, size=(20, 1, 4, 4)).astype(np.float32)
    dense = standardization_for(NB["darcy-flow"], x, yd)
    assert dense["y_shift"].shape == (1, 1, 4, 4) and float(dense["y_shift"].mean()) == pytest.approx(5.0, abs=0.5)


def test_stage1_classes_are_the_real_labels_for_classification(monkeypatch):
    import recraft.discretise as disc
    from recraft.targets import stage1_classes

    def no_kmeans(*a, **k):
        raise AssertionError("classification labels must not be discretised")

    monkeypatch.setattr(disc, "discretise_targets", no_kmeans)
    y = np.array([7, 3, 7, 9, 3, 3])
    got = stage1_classes(NB["cifar100"], y, 0, seed=0)
    assert got.tolist() == [1, 0, 1, 2, 0, 0]           # same grouping, ids made consecutive


def test_stage1_classes_discretise_dense_and_multilabel_targets():
    from recraft.targets import stage1_classes

    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(0, 0.01, (10, 1, 4, 4)), rng.normal(5, 0.01, (10, 1, 4, 4))])
    labels = stage1_classes(NB["darcy-flow"], y.astype(np.float32), 2, seed=0)
    assert sorted(np.bincount(labels)) == [10, 10] and len(set(labels[:10])) == 1
    ml = np.zeros((30, 36), np.float32)
    ml[:10, 0] = ml[10:20, 5] = ml[20:, 9] = 1
    groups = stage1_classes(NB["deepsea"], ml, 0, seed=0)   # Table 8: none; the code's k = 10
    assert len(set(groups[:10])) == len(set(groups[10:20])) == len(set(groups[20:])) == 1
    assert len(set(groups)) == 3
    with pytest.raises(ValueError, match="n_label_classes"):
        stage1_classes(NB["cosmic"], y.astype(np.float32), 0, seed=0)


# ---- whole-split metrics with the split's extras --------------------------------------------

class _Fixed(torch.nn.Module):
    """Returns the stored output rows for the inputs' first feature (sample indices)."""

    def __init__(self, out):
        super().__init__()
        self.out = torch.as_tensor(out, dtype=torch.float32)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.out[x[:, 0, 0].long()]


def test_metrics_are_computed_on_the_whole_split_not_averaged_per_batch():
    from recraft.training import evaluate

    # AUROC over 4 samples is 0.75; the mean of two batches of 2 would be (1.0 + 0.0)/2 = 0.5
    scores = np.array([[0.9], [0.1], [0.2], [0.15]])
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    x = np.arange(4, dtype=np.float32).reshape(4, 1, 1)
    err = evaluate(_Fixed(scores), x, y, "mean_auroc_error", "cpu", batch_size=2)
    assert err == pytest.approx(0.25)


def test_split_extras_reach_the_metric():
    from recraft.training import evaluate

    # Cosmic: the only mis-ranked pixel is ignored, so the error is 0 with the mask and not without
    pred = np.array([[[[0.9, 0.1], [0.8, 0.95]]]])
    mask = np.array([[[[1.0, 0.0], [1.0, 0.0]]]])
    ignore = np.array([[[0.0, 0.0], [0.0, 1.0]]])
    x = np.zeros((1, 1, 1), np.float32)
    with_mask = evaluate(_Fixed(pred), x, mask, "pixel_auroc_error", "cpu", aux={"ignore": ignore})
    without = evaluate(_Fixed(pred), x, mask, "pixel_auroc_error", "cpu")
    assert with_mask == 0.0 and without > 0.0


# ---- floors ---------------------------------------------------------------------------------

def _metric(name):
    from harness.metrics import get_metric

    return get_metric(name)


def test_majority_floor_predicts_the_most_frequent_training_class():
    from baselines.floor_majority import MajorityClass, chance_error

    y = np.array([2, 2, 1, 2, 0])
    predict = MajorityClass().fit(np.zeros((5, 1, 3)), y, None, np.array([0]), None, "min", 0)
    out = predict(np.zeros((4, 1, 3)))
    assert out.shape == (4, 3) and (out.argmax(axis=1) == 2).all()
    assert _metric("error_rate")(out, np.array([2, 2, 0, 1])) == pytest.approx(0.5)
    assert chance_error(4) == pytest.approx(0.75)


def test_logistic_floor_in_the_training_span_equals_the_plain_fit():
    from sklearn.linear_model import LogisticRegression

    from baselines.floor_logistic import LogisticRegressionFloor

    rng = np.random.default_rng(0)
    n, p = 30, 200                                       # fewer samples than features
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 1, p)) + y[:, None, None] * 0.3
    xv, yv = rng.normal(size=(12, 1, p)) + (np.arange(12) % 3)[:, None, None] * 0.3, np.arange(12) % 3
    predict = LogisticRegressionFloor().fit(x, y, xv, yv, lambda a, b: 0.0, "min", 0)  # picks C=1e-3
    flat = x.reshape(n, -1)
    mean, std = flat.mean(0), flat.std(0)
    ref = LogisticRegression(C=1e-3, max_iter=5000, tol=1e-10).fit((flat - mean) / std, y)
    want = ref.predict_proba((xv.reshape(12, -1) - mean) / std)
    assert np.exp(predict(xv)) == pytest.approx(want, abs=2e-3)


def test_ridge_floor_dual_form_equals_the_primal(monkeypatch):
    import baselines.floor_ridge as fr

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 1, 60)), rng.normal(size=(20, 1, 10))
    xv, yv = rng.normal(size=(8, 1, 60)), rng.normal(size=(8, 1, 10))
    mse = lambda p, t: float(np.mean((p - t) ** 2))  # noqa: E731
    primal = fr.RidgeRegression().fit(x, y, xv, yv, mse, "min", 0)(xv)
    calls = []
    real_dual = fr._dual_fit
    monkeypatch.setattr(fr, "PRIMAL_LIMIT", 0)
    monkeypatch.setattr(fr, "_dual_fit", lambda *a: calls.append(1) or real_dual(*a))
    dual = fr.RidgeRegression().fit(x, y, xv, yv, mse, "min", 0)(xv)
    assert calls == [1]
    assert dual == pytest.approx(primal, abs=1e-4)


def test_every_method_supports_every_task_but_the_floors_and_specialists_split_by_kind():
    from harness.methods.discovery import discover

    entries = {n: e.method for n, e in discover().items() if e.available}
    for name, m in entries.items():
        for t in NB.values():
            ok, why = m.supports(t)
            if name in ("fno", "unet"):                  # field-to-field models: dense regression
                assert ok == (t.kind == "dense_regression"), (name, t.name)
                assert ok or why, (name, t.name)
            elif name not in FLOORS:
                assert ok, (name, t.name, why)
            elif name in ("majority", "logistic"):
                assert ok == (t.kind == "classification"), (name, t.name)
            elif name in ("mean", "ridge"):
                assert ok == (t.kind != "classification"), (name, t.name)
            else:                                        # persistence: no same-field task here
                assert not ok and why, (name, t.name)


@pytest.mark.parametrize("task,floor", [("satellite", "majority"), ("satellite", "logistic"),
                                        ("cosmic", "mean"), ("cosmic", "ridge"),
                                        ("deepsea", "mean"), ("psicov", "mean")])
def test_floors_run_on_the_stand_ins_with_the_split_extras(tiny_root, task, floor):
    from recraft.run import run_one

    out = run_one(floor, task, tiny_root, suite="nasbench360", profile="smoke", phase="final")
    name = NB[task].metric.name
    assert np.isfinite(out["metrics"][f"test_{name}"])
    if task == "deepsea":    # the per-label prior ranks every sample alike: AUROC 0.5
        assert out["metrics"][f"test_{name}"] == pytest.approx(0.5)


# ---- fine-tuning methods on the stand-ins ---------------------------------------------------

@pytest.mark.parametrize("method,task", [("nft", "deepsea"), ("recraft", "satellite"),
                                         ("orca", "cosmic"), ("recraft-ref", "satellite")])
def test_methods_run_on_each_target_kind(tiny_root, method, task):
    from recraft.run import run_one

    out = run_one(method, task, tiny_root, suite="nasbench360", profile="smoke", phase="final",
                  test_config=True)
    name = NB[task].metric.name
    assert 0.0 <= out["metrics"][f"test_{name}"] <= 1.0
    assert out["finetune_history"] and all(np.isfinite(r["train_loss"])
                                           for r in out["finetune_history"])


def test_recraft_fld_uses_the_real_class_labels(tiny_root, monkeypatch):
    import recraft.align.aligner as aligner_mod
    import recraft.discretise as disc
    from recraft.run import run_one

    seen = {}
    real_init = aligner_mod.Aligner.__init__

    def spy(self, model, source, x, y, seed, device, labels=None, **kw):
        seen["labels"], seen["y"] = labels, np.asarray(y)
        real_init(self, model, source, x, y, seed, device, labels=labels, **kw)

    def no_kmeans(*a, **k):
        raise AssertionError("satellite's classes must not be discretised")

    monkeypatch.setattr(aligner_mod.Aligner, "__init__", spy)
    monkeypatch.setattr(disc, "discretise_targets", no_kmeans)
    out = run_one("recraft", "satellite", tiny_root, suite="nasbench360", profile="smoke",
                  test_config=True)
    labels, y = seen["labels"], seen["y"]
    assert labels is not None and len(labels) == len(y)
    # one FLD class per satellite class, the same grouping
    assert len(set(labels)) == len(set(y))
    assert all(len(set(labels[y == c])) == 1 for c in set(y))
    assert any(k.startswith("align.") for k in out["finetune_history"][-1])


def test_dry_run_lists_skipped_cells_with_their_reasons(tmp_path, capsys):
    from harness.sweep import main

    rc = main(["--suite", "nasbench360", "--tasks", "satellite,cosmic", "--methods",
               "majority,mean", "--profile", "smoke", "--runs-dir", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "satellite/mean: single-label classification: see the majority and logistic floors" in out
    assert "cosmic/majority: dense segmentation target: see the mean and ridge floors" in out
    assert "satellite/majority" not in out      # planned cells are not listed as skipped
