"""The stages: stage-1 plans and the aligner (recraft.align), stage-2 fine-tuning (recraft.finetune),
on tiny presets (CPU).

Stage 1 runs on ``roberta-tiny`` / ``swin-tiny-random`` target models against a stub source side
(fixed random features and a linear source head that the test can inspect), so every test takes
about a second. Stage 2's bookkeeping (schedule, test-split access, best weights, resume) is
checked on the same models or on a tiny linear model where the validation curve must be shaped.
"""
from __future__ import annotations

import copy
import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import recraft.align.aligner as al_mod
import recraft.align.terms as terms_mod
from recraft.align import AlignSettings, plan_stage1, run_alignment
from recraft.discretise import class_weights, discretise_targets
from recraft.finetune import FinetuneSettings, finetune
from recraft.losses import entropic_ot, fld_loss
from recraft.model import build_target_model
from recraft.ot.batched import batched_entropic_ot
from recraft.training import evaluate, reference_milestones, warmup_linear

torch.set_num_threads(1)
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- fixtures
@dataclass
class StubSource:
    """What run_alignment needs from a SourceSide; make_head returns one inspectable head."""

    features: torch.Tensor
    labels: torch.Tensor
    head: nn.Linear

    def make_head(self, device=None):
        return self.head.to(device) if device is not None else self.head


def stub_source(model, n=40, n_classes=4, seed=0) -> StubSource:
    g = torch.Generator().manual_seed(seed)
    emb = model.embedder(torch.zeros(1, *model.input_shape)).shape[-1]
    labels = torch.arange(n) % n_classes
    feats = torch.randn(n, emb, generator=g) + 0.5 * labels[:, None].float()
    torch.manual_seed(seed)
    return StubSource(feats, labels, nn.Linear(model.spec.hidden_dim, n_classes))


def smooth_fields(n, shape, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs with a few distinct modes (so k-means finds classes) and a target per input."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 2 * np.pi, shape[-1], endpoint=False)
    amp = rng.integers(1, 4, size=n)[:, None] + 0.1 * rng.normal(size=(n, 1))
    base = amp * np.sin(grid[None, :] + rng.uniform(0, 0.3, size=(n, 1)))
    if len(shape) == 3:  # (C, H, W)
        x = base[:, None, :, None] * np.cos(grid)[None, None, None, :]
    else:
        x = base[:, None, :]
    x = x.astype(np.float32)
    y = (np.roll(x, 3, axis=-1) * 1.5 + 0.2).astype(np.float32)
    return x, y


def model_1d(length=32):
    torch.manual_seed(0)
    return build_target_model("roberta-tiny", (1, length), (1, length), target_seq_len=16)


def model_2d(size=16):
    torch.manual_seed(0)
    return build_target_model("swin-tiny-random", (1, size, size), (1, size, size))


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def align(model, source, x, y, ablate=(), **kw):
    base = dict(n_classes=3, fld_batch=8, fa_batch=16, lr=1e-2, fld_lr=1e-2, probe_size=len(x))
    base.update(kw)
    return run_alignment(model, source, x, y, AlignSettings(**base), "adam", 0.0, 0, CPU,
                         ablate=ablate)


# ----------------------------------------------------------------------------- schedules
def test_warmup_linear_by_hand():
    f = warmup_linear(100, 10, 50)
    assert [f(i) for i in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert [f(i) for i in (10, 30, 49, 50, 80)] == pytest.approx([1.0, 0.5, 1 / 40, 0.0, 0.0])
    g = warmup_linear(10, 0, 5)           # no warm-up: one iteration at full lr
    assert [g(i) for i in (0, 1, 3, 5, 9)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])


def test_reference_step_milestones_scale_with_the_profile():
    assert reference_milestones(1.0) == (20, 40, 60)
    assert reference_milestones(0.15) == (3, 6, 9)  # quick profile: 9 of the paper's 60 FA steps
    assert reference_milestones(0.01) == (1, 2, 3)  # strictly increasing even when tiny


def toy_model(length=8, seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(length, length, bias=False)
    nn.init.zeros_(lin.weight)
    return nn.Sequential(nn.Flatten(), lin, nn.Unflatten(1, (1, length)))


def toy_splits(n=16, length=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3 * n, 1, length)).astype(np.float32)
    # training teaches y = 2x; validation wants y = x: the best validation epoch is mid-run
    return {"train": (x[:n], 2 * x[:n]), "val": (x[n:2 * n], x[n:2 * n]),
            "test": (x[2 * n:], 1.2 * x[2 * n:])}


@pytest.mark.parametrize("paper_epochs,decay_epochs,expected", [
    # 4 of 200 paper epochs, 4 batches each: decay reaches 0 exactly at the run's last iteration
    (200, 200, [12 / 15, 8 / 15, 4 / 15, 0.0]),
    # Darcy: 100 paper epochs, decay at 200 -> the run ends at about half the peak lr
    (100, 200, [28 / 31, 24 / 31, 20 / 31, 16 / 31]),
])
def test_finetune_schedule_keeps_paper_proportions(paper_epochs, decay_epochs, expected):
    rows = []
    s = FinetuneSettings(optimizer="adam", lr=1e-2, epochs=4, paper_epochs=paper_epochs,
                         warmup_epochs=5, decay_epochs=decay_epochs, batch_size=4)
    finetune(toy_model(), toy_splits(), s, 0, CPU, lambda e, m, st: rows.append((e, m)))
    assert [e for e, _ in rows] == [1, 2, 3, 4]
    assert [m["lr"] / 1e-2 for _, m in rows] == pytest.approx(expected)


# ----------------------------------------------------------------------------- stage 1
def test_joint_paper_mode_decreases_objective_and_trains_only_the_embedder():
    model = model_2d()
    x, y = smooth_fields(24, (1, 16, 16))
    src = stub_source(model)
    body, task_head, emb0, src_head = (snapshot(model.body), snapshot(model.head),
                                       snapshot(model.embedder), snapshot(src.head))
    res = align(model, src, x, y, fa_loss="w1", fld="tgt_given_src", combine="joint",
                epsilon=0.5, fa_steps=6, fld_epochs=2)
    steps = [r for r in res.log if r["step"] >= 0 and "loss" in r]
    assert len(steps) == 6 and all("fa" in r and "fld" in r for r in steps)   # both terms, every step
    start, end = res.log[0], res.log[-1]
    obj = {t: 0.5 * r[f"{t}.fa"] + r[f"{t}.fld"] for t, r in (("probe_start", start), ("probe_end", end))}
    assert obj["probe_end"] < obj["probe_start"] - 1e-3
    for key in ("fa", "fld", "source_entropy", "target_loss"):
        assert math.isfinite(start[f"probe_start.{key}"]) and math.isfinite(end[f"probe_end.{key}"])
    assert same(snapshot(model.body), body) and same(snapshot(model.head), task_head)
    assert same(snapshot(src.head), src_head)                       # paper: head frozen
    assert not same(snapshot(model.embedder), emb0)
    assert same(res.embedder_state, snapshot(model.embedder))
    assert all(p.requires_grad for p in model.parameters())       # left trainable for stage 2


def test_joint_spreads_the_smaller_budget_and_keeps_the_sum_unbiased():
    model = model_1d()
    x, y = smooth_fields(24, (1, 32))
    res = align(model, stub_source(model), x, y, fa_loss="w1", fld="tgt_given_src",
                combine="joint", epsilon=0.5, fa_steps=6, fld_epochs=1, probe_size=0)
    steps = [r for r in res.log if r["step"] >= 0]
    assert [("fld" in r) for r in steps] == [True, False, True, False, True, False]
    for r in steps:  # 3 FLD batches over 6 steps: weight 2, so each step estimates ε·FA + λ·FLD
        expected = 0.5 * r["fa"] + (2.0 * r["fld"] if "fld" in r else 0.0)
        assert r["loss"] == pytest.approx(expected, rel=1e-5)


def test_reference_mode_fa_then_per_class_fld_trains_the_source_head(monkeypatch):
    seen = []
    real = terms_mod.fld_loss

    def spy(probs, labels, n_cls, direction, **kw):
        seen.append((tuple(probs.shape), labels.tolist(), direction, kw.get("token_mode")))
        return real(probs, labels, n_cls, direction, **kw)

    monkeypatch.setattr(terms_mod, "fld_loss", spy)
    model = model_1d()
    x, y = smooth_fields(24, (1, 32))
    src = stub_source(model)
    body, head0, emb0 = snapshot(model.body), snapshot(src.head), snapshot(model.embedder)
    res = align(model, src, x, y, fa_loss="sinkhorn_div", fld="src_given_tgt", combine="sequential",
                fa_steps=3, fld_epochs=1, train_source_head=True, token_mode="per_token",
                reference_schedule=True, schedule_scale=0.05, probe_size=0, fld_estimator="batch")
    steps = [r for r in res.log if r["step"] >= 0]
    assert [("fa" in r) for r in steps[:3]] == [True] * 3 and all("fld" in r for r in steps[3:])
    assert len(steps) > 3
    # RECRAFT's reference scale m/N_b on the FA steps (16 of 24 samples, 6 batches of 4)
    assert steps[0]["loss"] == pytest.approx(16 / 6 * steps[0]["fa"], rel=1e-5)
    # 1D dense: one pseudo-label distribution per token; per-class chunks
    shapes, label_sets = {s for s, *_ in seen}, [set(lab) for _, lab, *_ in seen]
    assert all(len(s) == 3 and s[1] == model.num_tokens for s in shapes)
    assert all(len(ls) == 1 for ls in label_sets)
    assert {d for *_, d, _ in seen} == {"src_given_tgt"} and {t for *_, t in seen} == {"per_token"}
    assert not same(snapshot(src.head), head0)                      # the code trains the head
    assert same(snapshot(model.body), body) and not same(snapshot(model.embedder), emb0)


def test_sequential_paper_direction_uses_mixed_class_batches(monkeypatch):
    seen = []
    real = terms_mod.fld_loss

    def spy(probs, labels, n_cls, direction, **kw):
        seen.append((tuple(probs.shape), set(labels.tolist())))
        return real(probs, labels, n_cls, direction, **kw)

    monkeypatch.setattr(terms_mod, "fld_loss", spy)
    model = model_2d()
    x, y = smooth_fields(24, (1, 16, 16))
    res = align(model, stub_source(model), x, y, fa_loss="none", fld="tgt_given_src",
                combine="sequential", fld_epochs=1, probe_size=0, fld_estimator="batch")
    # H(Y_t|Y_s) is 0 on single-class chunks: the batches must mix classes; 2D: one row per sample
    assert all(len(s) == 2 for s, _ in seen) and any(len(ls) > 1 for _, ls in seen)
    assert all(r["fld"] > 0 for r in res.log)


def test_fld_only_and_fa_only_skip_the_other_term(monkeypatch):
    model = model_1d()
    x, y = smooth_fields(24, (1, 32))

    def boom(*a, **k):
        raise AssertionError("this term should not be computed")

    with monkeypatch.context() as m:
        m.setattr(terms_mod, "FeatureAlignment", boom)
        res = align(model, stub_source(model), x, y, fa_loss="none", fld="tgt_given_src",
                    combine="joint", fa_steps=60, fld_epochs=1)
    assert all(not any(k.endswith("fa") for k in r) for r in res.log)
    assert len([r for r in res.log if r["step"] >= 0 and "fld" in r]) == 3
    with monkeypatch.context() as m:
        m.setattr(terms_mod, "fld_loss", boom)
        m.setattr(terms_mod, "RunningJoint", boom)
        m.setattr(al_mod, "discretise_targets", boom)   # FA-only (W1) needs no target classes
        res = align(model_1d(), stub_source(model), x, y, fa_loss="w1", fld="none",
                    combine="joint", fa_steps=4, fld_epochs=4)
    assert [r["step"] for r in res.log if "fa" in r] == [0, 1, 2, 3]
    assert all(not any(k.endswith("fld") for k in r) for r in res.log)


def test_paper_fld_is_estimated_over_the_whole_training_set():
    """Each step logs (and differentiates) H(Y_t | Y_s) of the whole training set's joint."""
    model = model_2d()
    x, y = smooth_fields(24, (1, 16, 16))
    src = stub_source(model)
    with torch.no_grad():                       # a confident head, so batch estimates are biased
        src.head.weight.mul_(20.0)
    res = align(model, src, x, y, fa_loss="none", fld="tgt_given_src", fld_epochs=1, lr=0.0,
                fld_lr=0.0, probe_size=0)
    labels = torch.as_tensor(discretise_targets(y, n_classes=3, seed=0))
    with torch.no_grad():
        probs = torch.softmax(src.head(model.body_features(torch.as_tensor(x))), dim=-1)
    whole = float(fld_loss(probs, labels, 3))
    logged = [r["fld"] for r in res.log if "fld" in r]
    assert len(logged) == 3 and logged == pytest.approx([whole] * 3, rel=1e-5)
    # the code's estimator logs the batch's own entropy, which is lower
    batch = align(model_2d(), src, x, y, fa_loss="none", fld="tgt_given_src", fld_epochs=1,
                  lr=0.0, fld_lr=0.0, probe_size=0, fld_estimator="batch")
    assert max(r["fld"] for r in batch.log if "fld" in r) < whole - 1e-3


def test_ablations_keep_the_other_terms_batches_steps_and_weights(monkeypatch):
    seen: dict[str, list] = {}
    real_fa, real_fld = terms_mod.FATerm.next_batch, terms_mod.FLDTerm.__call__

    def fa_spy(self):
        idx = real_fa(self)
        seen["fa"].append(tuple(idx.tolist()))
        return idx

    def fld_spy(self, idx, weight=1.0):
        seen["fld"].append(tuple(idx.tolist()))
        return real_fld(self, idx, weight)

    monkeypatch.setattr(terms_mod.FATerm, "next_batch", fa_spy)
    monkeypatch.setattr(terms_mod.FLDTerm, "__call__", fld_spy)
    x, y = smooth_fields(24, (1, 32))
    for combine in ("sequential", "joint"):
        kw = dict(fa_loss="w1", fld="tgt_given_src", combine=combine, epsilon=0.5, fa_steps=4,
                  fld_epochs=2, probe_size=0)
        plan = plan_stage1(AlignSettings(n_classes=3, fld_batch=8, fa_batch=16, lr=1e-2,
                                         fld_lr=1e-2, **kw), "adam", 0.0, len(x))
        runs = {}
        for ablate in ((), ("fa",), ("fld",)):
            seen = {"fa": [], "fld": []}
            model = model_1d()
            log = align(model, stub_source(model), x, y, ablate, **kw).log
            runs[ablate] = (seen, [r for r in log if r["step"] >= 0])
        full_seen, _ = runs[()]
        for ablate, term in ((("fa",), "fld"), (("fld",), "fa")):
            part_seen, part_log = runs[ablate]
            # the remaining term draws the same batches as in the full run ...
            assert part_seen[term] == full_seen[term] and part_seen[term]
            assert not part_seen[ablate[0]] and all(ablate[0] not in r for r in part_log)
            # ... on the same steps of its phase, with the same weight
            phase = next(p for p in plan.phases if p.term(term) is not None)
            offset = min(r["step"] for r in part_log) - min(phase.positions(term))
            assert [r["step"] - offset for r in part_log] == sorted(phase.positions(term))
            assert offset == 0 or combine == "sequential"   # joint: the very same global steps
            for r in part_log:
                assert r["loss"] == pytest.approx(phase.term(term).weight * r[term], rel=1e-5)
    # joint: 6 FLD batches over max(4, 6) steps, FA on 4 of them with weight ε·6/4
    assert sorted(plan.phases[0].positions("fa")) == [0, 1, 3, 4]
    assert plan.phases[0].term("fa").weight == pytest.approx(0.5 * 6 / 4)


def test_orca_uses_kmeans_clusters_per_cluster_weights_and_no_reference_scale(monkeypatch):
    import recraft.losses.alignment as fa_mod
    import recraft.losses.otdd as otdd_mod

    calls, dists = [], []
    real, real_dist = fa_mod.class_conditional_alignment, otdd_mod.label_distances

    def spy(source, source_labels, target, target_clusters, **kw):
        calls.append((target_clusters.clone(), kw))
        return real(source, source_labels, target, target_clusters, **kw)

    def dist_spy(*a, **kw):
        out = real_dist(*a, **kw)
        dists.append(out)
        return out

    monkeypatch.setattr(fa_mod, "class_conditional_alignment", spy)
    monkeypatch.setattr(otdd_mod, "label_distances", dist_spy)
    model = model_2d()
    x, y = smooth_fields(24, (1, 16, 16))
    src = stub_source(model)
    res = align(model, src, x, y, fa_loss="otdd", fld="none", combine="sequential", fa_steps=2,
                reference_schedule=True, probe_size=0)
    labels = discretise_targets(y, n_classes=3, seed=0)
    assert len(calls) == 2
    for clusters, kw in calls:
        # ORCA collects up to fa_batch members of *every* cluster (here: whole clusters)
        assert sorted(clusters.tolist()) == sorted(labels.tolist())
        assert kw["per_cluster"] is True
        assert np.allclose(kw["cluster_weights"], class_weights(labels, 3))
        assert kw["stop_thr"] == 1e-4
    # one label-distance solve per step: 4 source classes x 3 target clusters
    assert [tuple(d.source_target.shape) for d in dists] == [(4, 3), (4, 3)]
    for r in res.log:
        assert r["loss"] == pytest.approx(r["fa"])       # w_k weights, not RECRAFT's m/N_b


def test_batched_inner_ot_matches_the_losses_solver():
    g = torch.Generator().manual_seed(0)
    xs = [0.4 * torch.randn(k, 6, generator=g) + 0.2 * i for i, k in enumerate([5, 9, 1, 4])]
    ys = [0.3 * torch.randn(k, 6, generator=g) for k in [7, 3, 4, 1]]
    mine = batched_entropic_ot(xs, ys, 0.1, stop_thr=1e-10, num_iter_max=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.stack([entropic_ot(a, b, reg=0.1, p=2, cost_scale=1.0, num_iter_max=5000,
                                       stop_thr=1e-10).double() for a, b in zip(xs, ys)])
    assert torch.allclose(mine, ref, rtol=1e-5, atol=1e-6)



def test_batched_ot_groups_problems_of_very_different_sizes():
    """One large set among small ones (ORCA's OTDD on Cosmic: one k-means cluster holds most
    targets) is solved by size group, not by padding every problem to the largest; the values
    are the same solves."""
    from recraft.ot.batched import _size_groups

    g = torch.Generator().manual_seed(2)
    xs = [0.4 * torch.randn(k, 5, generator=g) + 0.1 * i for i, k in enumerate([60, 3, 2, 3, 2])]
    ys = [0.3 * torch.randn(k, 5, generator=g) for k in [50, 2, 3, 1, 2]]
    assert len(_size_groups(xs, ys, 60, 50)) > 1
    assert len(_size_groups(xs[1:], ys[1:], 3, 3)) == 1      # similar sizes: one padded solve
    mine = batched_entropic_ot(xs, ys, 0.1, stop_thr=1e-10, num_iter_max=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.stack([entropic_ot(a, b, reg=0.1, p=2, cost_scale=1.0, num_iter_max=5000,
                                       stop_thr=1e-10).double() for a, b in zip(xs, ys)])
    assert torch.allclose(mine, ref, rtol=1e-5, atol=1e-6)

def test_label_divergences_are_debiased_batched_solves():
    """The one implementation of OTDD's label-to-label distances (source x target and within)."""
    from recraft.losses import label_divergences

    g = torch.Generator().manual_seed(1)
    a = [0.3 * torch.randn(k, 4, generator=g, dtype=torch.float64) + i for i, k in enumerate([6, 5])]
    b = [0.3 * torch.randn(k, 4, generator=g, dtype=torch.float64) + 0.5 * i for i, k in enumerate([4, 7, 3])]
    kw = dict(stop_thr=1e-10, num_iter_max=5000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def ot(x, y):
            return float(entropic_ot(x, y, reg=0.1, p=2, cost_scale=1.0, **kw))

        self_a, cross, self_b = label_divergences(a, b, reg=0.1, **kw)
        _, within, none = label_divergences(b, reg=0.1, **kw)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            want = ot(x, y) - 0.5 * ot(x, x) - 0.5 * ot(y, y)
            assert float(cross[i, j]) == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert none is None and torch.allclose(within, within.T) and torch.all(within.diagonal() == 0)
    assert float(within[0, 1]) == pytest.approx(ot(b[0], b[1]) - 0.5 * ot(b[0], b[0])
                                                - 0.5 * ot(b[1], b[1]), rel=1e-5, abs=1e-6)


@pytest.fixture
def fa_kwargs(monkeypatch) -> list[dict]:
    """The keyword arguments of every FeatureAlignment the pipeline builds (built for real)."""
    made = []
    real = terms_mod.FeatureAlignment

    def spy(*a, **kw):
        made.append(kw)
        return real(*a, **kw)

    monkeypatch.setattr(terms_mod, "FeatureAlignment", spy)
    return made


def test_sinkhorn_solver_settings_reach_fa_and_warnings_are_counted(fa_kwargs):
    made = fa_kwargs
    model = model_1d()
    x, y = smooth_fields(24, (1, 32))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = align(model, stub_source(model), x, y, fa_loss="sinkhorn_div", fld="none",
                    combine="sequential", fa_steps=3, fa_iters=20, probe_size=0)
    assert made and made[0]["stop_thr"] == 1e-4 and made[0]["num_iter_max"] == 20
    # 20 iterations cannot converge: POT's per-call warnings are swallowed, counted, summarised
    assert not any("Sinkhorn did not converge" in str(w.message) for w in rec)
    assert sum(r["fa_unconverged"] for r in res.log) > 0
    assert sum("stage 1: Sinkhorn did not reach" in str(w.message) for w in rec) == 1


@pytest.mark.parametrize("solver", ["torch", "pot"])
def test_ot_solver_setting_reaches_fa_and_both_solvers_train(fa_kwargs, solver):
    made = fa_kwargs
    model = model_1d()
    x, y = smooth_fields(24, (1, 32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = align(model, stub_source(model), x, y, fa_loss="sinkhorn_div", fld="none",
                    combine="sequential", fa_steps=2, probe_size=0, ot_solver=solver)
    assert made and made[0]["solver"] == solver
    fa = [r["fa"] for r in res.log if "fa" in r]
    assert fa and all(math.isfinite(v) for v in fa)


def test_unknown_ot_solver_is_a_clear_error():
    model = model_1d()
    x, y = smooth_fields(24, (1, 32))
    with pytest.raises(ValueError, match="valid solvers: torch, pot"):
        align(model, stub_source(model), x, y, fa_loss="sinkhorn_div", fld="none",
              combine="sequential", fa_steps=1, probe_size=0, ot_solver="geomloss")


# ----------------------------------------------------------------------------- stage 2
class CountingArray:
    """An array whose reads are recorded (which rows, and when)."""

    def __init__(self, a, reads, clock):
        self.a, self.reads, self.clock = a, reads, clock

    def __len__(self):
        return len(self.a)

    def __getitem__(self, idx):
        self.reads.append((self.clock[0], np.atleast_1d(np.asarray(idx)).tolist()))
        return self.a[idx]


def test_finetune_reads_test_once_after_training_with_best_validation_weights():
    splits = toy_splits()
    reads, clock, states, rows = [], [0], [], []
    x_te, y_te = splits["test"]
    splits["test"] = (CountingArray(x_te, reads, clock), y_te)

    def report(epoch, metrics, state):
        rows.append(dict(metrics))
        states.append(copy.deepcopy(state["model"]))
        clock[0] += 1

    s = FinetuneSettings(optimizer="adam", lr=5e-2, epochs=8, paper_epochs=8, warmup_epochs=1,
                         decay_epochs=8, batch_size=4)
    model = toy_model()
    res = finetune(model, splits, s, 0, CPU, report, evaluate_test=True)
    vals = [r["val_nrmse"] for r in rows]
    assert len(rows) == 8 and all(math.isfinite(v) for v in vals)
    assert 1 < res.best_epoch < 8 and res.best_val == min(vals)      # best is mid-run
    # the test split is read once, during the last epoch's report, each sample exactly once
    assert {when for when, _ in reads} == {7}
    assert sorted(i for _, idx in reads for i in idx) == list(range(len(x_te)))
    assert all("test_nrmse" not in r for r in rows[:-1]) and "test_nrmse" in rows[-1]
    best = toy_model()
    best.load_state_dict(states[res.best_epoch - 1])
    assert res.test == pytest.approx(evaluate(best, x_te, y_te, "nrmse", CPU), rel=1e-6)
    assert res.test_last == pytest.approx(evaluate(model, x_te, y_te, "nrmse", CPU), rel=1e-6)
    assert res.test != pytest.approx(res.test_last)


def test_finetune_without_evaluate_test_never_reads_test():
    splits = toy_splits()
    reads = []
    splits["test"] = (CountingArray(splits["test"][0], reads, [0]), splits["test"][1])
    s = FinetuneSettings(optimizer="adam", lr=1e-2, epochs=2, paper_epochs=2, batch_size=4)
    res = finetune(toy_model(), splits, s, 0, CPU, lambda *a: None)
    assert reads == [] and res.test is None


def test_evaluate_does_not_depend_on_batching():
    splits = toy_splits()
    model = toy_model()
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(8) * 0.7)
    x, y = splits["test"]
    assert evaluate(model, x, y, "nrmse", CPU, batch_size=3) == pytest.approx(
        evaluate(model, x, y, "nrmse", CPU, batch_size=64), rel=1e-9)
    assert evaluate(model, x, y, "nrmse", CPU) == pytest.approx(0.5 / 1.2, rel=1e-5)


def test_resume_continues_at_the_next_epoch_and_matches_an_uninterrupted_run():
    x, y = smooth_fields(16, (1, 32), seed=1)
    xv, yv = smooth_fields(6, (1, 32), seed=2)
    splits = {"train": (x, y), "val": (xv, yv)}
    s = FinetuneSettings(optimizer="adam", lr=1e-3, epochs=4, paper_epochs=4, warmup_epochs=1,
                         decay_epochs=4, batch_size=4)
    saved, rows = {}, []

    def report(epoch, metrics, state):
        buf = io.BytesIO()
        torch.save(dict(state), buf)        # what the harness does with a checkpoint
        saved[epoch] = buf.getvalue()
        rows.append((epoch, dict(metrics)))

    full_model = model_1d()
    full = finetune(full_model, splits, s, 0, CPU, report)

    resumed_rows = []
    state = torch.load(io.BytesIO(saved[2]), weights_only=False)
    again_model = model_1d()
    again = finetune(again_model, splits, s, 0, CPU,
                     lambda e, m, st: resumed_rows.append((e, dict(m))), resume=state)
    assert [e for e, _ in resumed_rows] == [3, 4]
    for (e1, m1), (e2, m2) in zip(rows[2:], resumed_rows):
        assert e1 == e2 and m1 == m2                  # bit-identical, dropout included
    assert same(snapshot(full_model), snapshot(again_model))
    assert (again.best_epoch, again.best_val, again.last_val) == (full.best_epoch, full.best_val,
                                                                   full.last_val)
    assert [h["epoch"] for h in again.history] == [1, 2, 3, 4]


def test_resume_after_the_last_epoch_still_reads_test_once():
    splits = toy_splits()
    s = FinetuneSettings(optimizer="adam", lr=3e-2, epochs=3, paper_epochs=3, batch_size=4)
    saved = {}
    finetune(toy_model(), splits, s, 0, CPU,
             lambda e, m, st: saved.__setitem__(e, copy.deepcopy(dict(st))))
    reads = []
    splits["test"] = (CountingArray(splits["test"][0], reads, [0]), splits["test"][1])
    res = finetune(toy_model(), splits, s, 0, CPU, lambda *a: pytest.fail("no epoch left"),
                   evaluate_test=True, resume=saved[3])
    assert res.test is not None and math.isfinite(res.test) and math.isfinite(res.last_val)
    assert sorted(i for _, idx in reads for i in idx) == list(range(len(splits["test"][1])))
