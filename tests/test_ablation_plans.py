"""Ablations differ from their parent in the ablated factor only, and no method searches an inert knob.

Every method resolves what it does before fine-tuning to a plan (``FineTuningMethod.plan``: the
source side's head training and recalibration, and stage 1's phases of steps with their learning
rates, weights and terms). For every method with ``variant_of``, on every task and profile, for
the parent's paper defaults and for a perturbed parent configuration, the variant's plan must be
the parent's with the declared factor (``ablates``) removed and the declared switches
(``replaces``) swapped — any other difference fails. Then,
for every method, each stage-1 knob it searches must change what it does, and each knob it leaves
out must not (or only as a rescaling of its searched embedder learning rate).
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from harness.methods.discovery import discover
from harness.profiles import PROFILES
from harness.suites import get_suite
from recraft.family import ALIGN_KEYS, FineTuningMethod, MethodPlan

ENTRIES = {n: e.method for n, e in discover().items() if e.available}
TASKS = list(get_suite("pdebench").values())
#: training-set sizes to plan for: the paper's 9000 minus validation, and a quick-profile cap
N_TRAIN = {"paper": 8100, "quick": 86}
VARIANTS = sorted(n for n, m in ENTRIES.items() if m.variant_of)
ALIGNING = sorted(n for n, m in ENTRIES.items()
                  if isinstance(m, FineTuningMethod) and m.aligns)
#: a value other than the paper's for each stage-1 knob (chosen to survive the profiles' scaling)
OTHER = {"align.epsilon": 0.8, "align.fa_steps": 100, "align.fld_epochs": 8}


def perturbed(config: dict) -> dict:
    out = dict(config)
    for k, v in OTHER.items():
        if k in out:
            out[k] = v
    if "align.lr" in out:
        out["align.lr"] = 3 * out["align.lr"]
    return out


def plan_of(method, task, profile: str, config: dict) -> MethodPlan:
    return method.plan(task, PROFILES[profile], config, N_TRAIN[profile], seed=0,
                       class_sizes=[N_TRAIN[profile] // 10] * 10)


@pytest.mark.parametrize("profile", sorted(N_TRAIN))
@pytest.mark.parametrize("name", VARIANTS)
def test_variant_plan_is_parent_plan_minus_the_declared_factor(name, profile):
    m = ENTRIES[name]
    parent = ENTRIES[m.variant_of]
    if getattr(m, "reproduction", False):
        # another implementation of its parent (the released code), not an ablation
        assert not m.ablates
        pytest.skip(f"{name} reproduces {m.variant_of}'s reference code; it is not an ablation")
    assert m.ablates or m.replaces, \
        f"{name} is a variant of {m.variant_of} but declares no difference (ablates, replaces)"
    for task in TASKS:
        base = parent.defaults(task)
        for cfg in (base, perturbed(base)):
            mine, theirs = plan_of(m, task, profile, cfg), plan_of(parent, task, profile, cfg)
            expected = _with_switches(theirs, mine, m.replaces).without(*m.ablates)
            assert mine == expected, (f"{name} on {task.name} ({profile}): the plan differs from "
                                      f"{m.variant_of}'s beyond {m.ablates}:\n{mine}\n!=\n{expected}")
            assert mine != theirs, f"{name}: removing {m.ablates} changed nothing on {task.name}"


def _with_switches(parent: MethodPlan, variant: MethodPlan, fields: tuple[str, ...]) -> MethodPlan:
    """The parent's plan with the stage-1 switches ``fields`` taken from the variant's."""
    if not fields or parent.stage1 is None or variant.stage1 is None:
        return parent
    swapped = {f: getattr(variant.stage1.settings, f) for f in fields}
    return replace(parent, stage1=replace(parent.stage1,
                                          settings=replace(parent.stage1.settings, **swapped)))


def _fa_lr_free(plan: MethodPlan) -> MethodPlan:
    """The canonical plan without the learning rate that ``align.lr`` sets (FA / joint phases)."""
    plan = plan.canonical()
    if plan.stage1 is None:
        return plan
    phases = tuple(replace(p, lr=0.0) if p.name in ("fa", "joint") else p
                   for p in plan.stage1.phases)
    return replace(plan, stage1=replace(plan.stage1, phases=phases))


def effect(method, task, profile: str, key: str) -> str:
    """What changing ``key`` does to the method's plan: ``none``, ``lr`` (only a rescaled embedder
    lr, e.g. a single term's weight under SGD) or ``real``."""
    base = {**ENTRIES[method.variant_of or method.name].defaults(task), **method.defaults(task)}
    base.setdefault(key, perturbed({key: 1e-3})[key] / 3 if key == "align.lr" else None)
    if base[key] is None:
        base[key] = {"align.epsilon": task.defaults.epsilon, "align.fa_steps": 60,
                     "align.fld_epochs": 4}[key]
    other = dict(base, **{key: perturbed({key: base[key]})[key]})
    a, b = plan_of(method, task, profile, base), plan_of(method, task, profile, other)
    if a.canonical() == b.canonical():
        return "none"
    if _fa_lr_free(a) == _fa_lr_free(b):
        return "lr"
    return "real"


@pytest.mark.parametrize("name", ALIGNING)
def test_searched_stage1_knobs_matter_and_the_others_do_not(name):
    m = ENTRIES[name]
    problems = []
    for task in TASKS:
        space = m.search_space(task)
        for key in ALIGN_KEYS:
            e = effect(m, task, "paper", key)
            if key in space and e != "real" and not (key == "align.lr" and e == "lr"):
                problems.append(f"{task.name}: searches {key}, which changes nothing real ({e})")
            if key not in space and e == "real":
                problems.append(f"{task.name}: does not search {key}, which changes its plan")
            if key not in space and e == "lr" and "align.lr" not in space:
                problems.append(f"{task.name}: {key} rescales an lr that is not searched")
    assert not problems, f"{name}: " + "; ".join(problems)


def test_fa_only_does_not_search_the_inert_epsilon():
    """Issue 12: ε only scales FA-only's single term (inert under Adam)."""
    fa_only = ENTRIES["fa-only"]
    task = get_suite("pdebench")["advection"]          # Adam
    assert "align.epsilon" not in fa_only.search_space(task)
    assert effect(fa_only, task, "paper", "align.epsilon") == "none"
    rd1d = get_suite("pdebench")["diffusion-reaction-1d"]    # SGD: a factor on the searched lr
    assert effect(fa_only, rd1d, "paper", "align.epsilon") == "lr"


def test_paper_fa_only_keeps_recrafts_fa_phase():
    """Issue 12: RECRAFT's FA was active on 60 of ~1284 joint steps with weight ~21 while FA-only
    ran 60 steps; now both run the same FA phase (60 steps, same lr, weight ε)."""
    task = get_suite("pdebench")["advection"]
    rec, fa = ENTRIES["recraft"], ENTRIES["fa-only"]
    cfg = rec.defaults(task)
    p_rec, p_fa = plan_of(rec, task, "paper", cfg), plan_of(fa, task, "paper", cfg)
    fa_rec = next(p for p in p_rec.stage1.phases if p.term("fa"))
    assert p_fa.stage1.phases == (fa_rec,)
    assert (fa_rec.steps, fa_rec.lr, fa_rec.term("fa").weight) == (60, 1e-3, 0.5)
