"""The engine uses Ray and Optuna through public APIs only; these checks fail loudly when an
upgrade changes what the engine relies on.

* ``CellStudy`` drives Optuna with ask/tell the way Ray's ``OptunaSearch`` does, so a seeded
  search proposes exactly what it proposed through Ray's wrapper (compared here, call by call).
* ``CellScheduler`` keeps its own list of the trials each cell's ASHA was given, so the end of a
  trial ASHA never saw is not reported to it (ASHA raises ``KeyError`` on those).
* No module of ``harness/`` reads a private attribute of another object (``x._name``), except
  the one Optuna attribute :func:`harness.sampler.common_random_tpe` sets, checked below.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.engine.plan import CellPlan
from harness.engine.scheduler import CellScheduler
from harness.engine.searcher import make_sampler
from harness.engine.study import CellStudy
from harness.keys import CELL_KEY, PHASE_KEY
from harness.methods.discovery import get_method
from harness.methods.space import searched, to_optuna
from harness.suites import get_suite

ROOT = Path(__file__).resolve().parents[1]


def recraft_plan() -> CellPlan:
    return CellPlan.of(get_suite("pdebench")["burgers"], get_method("recraft"), num_samples=6,
                       seeds=0, max_t=4, grace_period=1)


def test_cell_study_proposes_what_ray_optuna_search_proposes():
    from ray.tune.search.optuna import OptunaSearch

    plan = recraft_plan()
    space = to_optuna(plan.space)
    first = [{k: plan.defaults[k] for k in searched(plan.space)}]
    ray_search = OptunaSearch(space=space, metric=plan.metric, mode=plan.mode,
                              sampler=make_sampler(3), points_to_evaluate=first)
    ours = CellStudy(space, plan.mode, make_sampler(3), first)
    for i in range(14):             # past TPE's start-up trials, so its model is compared too
        tid = f"t{i}"
        a, b = ray_search.suggest(tid), ours.ask(tid)
        assert a == b, f"trial {i}: OptunaSearch {a} vs CellStudy {b}"
        if i % 5 == 4:              # some trials fail: told without a value
            ray_search.on_trial_complete(tid, None, error=True)
            ours.tell(tid, None, failed=True)
        else:
            value = abs(math.log10(a["finetune.lr"]) + 4.0) + 0.1 * abs(a["align.epsilon"] - 0.5)
            ray_search.on_trial_complete(tid, {plan.metric: value})
            ours.tell(tid, value)
    assert i == 13 and first[0] == ours.ask("t0")      # the paper defaults came first


def test_enqueued_partial_trial_keeps_its_parameters():
    plan = recraft_plan()
    study = CellStudy(to_optuna(plan.space), plan.mode, make_sampler(0))
    study.ask("leader")
    study.tell("leader", 0.5)
    fixed = {"align.epsilon": 0.9, "align.lr": 2e-4}
    study.enqueue(fixed)
    follower = study.ask("follower")
    assert {k: follower[k] for k in fixed} == fixed and set(follower) == set(to_optuna(plan.space))


def _trial(tid: str, phase: str, key: str):
    return SimpleNamespace(trial_id=tid, config={CELL_KEY: key, PHASE_KEY: phase})


def test_scheduler_reports_to_asha_only_the_trials_it_gave_it():
    plan = recraft_plan()
    scheduler = CellScheduler([plan])
    asha = scheduler.asha[plan.key]
    seen = _trial("a", "search", plan.key)
    scheduler.on_trial_add(None, seen)
    assert scheduler.added[plan.key] == {"a"}
    result = {"training_iteration": 1, plan.metric: 0.3}
    scheduler.on_trial_result(None, seen, result)
    scheduler.on_trial_complete(None, seen, result)
    assert scheduler.added[plan.key] == set()
    # a trial ASHA never saw (added before a restore, or a final run) is not reported to it;
    # ASHA itself raises KeyError for such a trial
    unseen = _trial("b", "search", plan.key)
    scheduler.on_trial_complete(None, unseen, result)
    scheduler.on_trial_error(None, unseen)
    with pytest.raises(KeyError):
        asha.on_trial_remove(None, unseen)
    final = _trial("c", "final", plan.key)
    scheduler.on_trial_add(None, final)
    assert scheduler.added[plan.key] == set()
    assert scheduler.on_trial_result(None, final, result) == "CONTINUE"


def test_harness_reads_no_private_attribute_of_other_objects():
    private = re.compile(r"\b(?!self\b|cls\b)([A-Za-z_]\w*)\._[a-z]\w*")
    found = []
    strings = re.compile(r"(\"[^\"]*\"|'[^']*')")
    for path in sorted((ROOT / "harness").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = strings.sub('""', line.split("#", 1)[0])
            if code.lstrip().startswith(("from ", "import ")):
                continue        # a private module of the project's own (harness.scoring._arrays)
            if private.search(code):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert [f.split(":")[0] for f in found] == ["harness/sampler.py"], found


def test_optuna_tpe_still_draws_its_start_up_trials_from_random_sampler():
    """The one private attribute the harness sets: if Optuna renames it, the common random
    numbers of :mod:`harness.sampler` silently stop; this says so instead."""
    import optuna

    from harness.sampler import CommonRandomSampler, common_random_tpe

    assert isinstance(getattr(optuna.samplers.TPESampler(seed=0), "_random_sampler", None),
                      optuna.samplers.RandomSampler)
    assert isinstance(common_random_tpe(0)._random_sampler, CommonRandomSampler)
