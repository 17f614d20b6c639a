"""Every discovered method honours the plugin contract, on every task of the pdebench suite.

Parametrized over ``discover()`` with the default folder (``baselines/``, RECRAFT included), so
a new file in ``baselines/`` is checked without touching this file:

* identity: name, version, stages with ``stage_<name>`` code, no ``contract_problems()``;
* the space: library-neutral specs, stage-qualified keys, translations to Optuna distributions and
  Ray Tune domains (types, bounds, and what the sweep's OptunaSearch actually builds from them);
* defaults and ``test_config`` lie inside the space; every searched key is consumed by a stage;
* ``test_config`` runs end to end on a tiny synthetic 1D task (every method) and 2D task (every
  method) with a finite validation metric and one history row per epoch.

Run one method's checks with ``python -m pytest -q tests/test_methods_contract.py -k <name>``.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from harness.methods.contract import Method, Resources, Stage
from harness.methods.discovery import discover
from harness.methods.space import (Choice, Fixed, Float, IntRange, LogFloat, Param, check_in_space,
                                   searched, space_size, to_optuna, to_tune)
from harness.profiles import PROFILES
from harness.suites import get_suite

ENTRIES = discover()
METHODS = sorted(n for n, e in ENTRIES.items() if e.available)
TASKS = list(get_suite("pdebench").values())
#: the methods this repository ships; more may be added, none may silently disappear
SHIPPED = {"recraft", "recraft-ref", "nft", "orca", "fa-only", "fld-only", "recraft-no-recal",
           "fno", "unet"}

#: tiny budgets for the end-to-end runs (two epochs, so "one history row per epoch" means something)
TINY = PROFILES["quick"].with_overrides(finetune_epochs=2, max_train_samples=8, max_eval_samples=4,
                                        source_samples=16, source_head_epochs=1, batch_size=4)
TASK_1D, TASK_2D = "advection", "darcy"


def _method(name: str) -> Method:
    return ENTRIES[name].method


method_names = pytest.mark.parametrize("name", METHODS)
task_params = pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """One tiny 1D and one tiny 2D task in PDEBench format (generated once, ~0.1 s)."""
    from harness.data.synth import generate

    root = tmp_path_factory.mktemp("tiny-pdebench")
    for task in (TASK_1D, TASK_2D):
        generate(task, root, size="tiny", seed=0)
    return root


# ----------------------------------------------------------------------------- discovery
def test_every_shipped_plugin_loads():
    broken = {n: f"{e.origin}: {(e.error or '').splitlines()[0]}"
              for n, e in ENTRIES.items() if not e.available}
    assert not broken, f"unavailable method plugins: {broken}"
    assert SHIPPED <= set(METHODS), f"missing shipped methods: {sorted(SHIPPED - set(METHODS))}"


def test_names_are_unique_and_cli_safe():
    names = [e.method.name for e in ENTRIES.values() if e.available]
    assert len(names) == len(set(names))
    for n in names:
        # used on the command line (comma-separated lists), in MLflow tags and in result rows
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", n), f"method name {n!r} is not CLI-safe"


# ----------------------------------------------------------------------------- identity
@method_names
def test_required_attributes(name):
    m = _method(name)
    assert isinstance(m, Method)
    assert m.name == name
    assert isinstance(m.version, str) and m.version
    assert isinstance(m.summary, str) and m.summary, "give a one-line summary"
    assert m.contract_problems() == []
    assert m.variant_of is None or m.variant_of in METHODS, \
        f"{name}: variant_of={m.variant_of!r} is not a known method"
    assert isinstance(m.resources, Resources)
    assert m.resources.cpus > 0 and m.resources.gpus >= 0 and m.resources.workers >= 1


@method_names
def test_stages_have_code(name):
    m = _method(name)
    assert isinstance(m.stages, tuple) and m.stages
    stage_names = [st.name for st in m.stages]
    assert len(stage_names) == len(set(stage_names)), f"{name}: repeated stage names {stage_names}"
    for st in m.stages:
        assert isinstance(st, Stage)
        assert isinstance(st.consumes, tuple) and all(isinstance(k, str) for k in st.consumes)
        fn = getattr(m, f"stage_{st.name}", None)
        assert callable(fn), f"{name}: stage {st.name!r} has no method stage_{st.name}"
        assert m.stage_callable(st) == fn


@method_names
@task_params
def test_supports_answers(name, task):
    ok, why = _method(name).supports(task)
    assert isinstance(ok, bool) and isinstance(why, str)
    assert ok or why, "a refusal must say why (it is shown in the coverage matrix)"


# ----------------------------------------------------------------------------- the space
@method_names
@task_params
def test_space_is_library_neutral_and_stage_qualified(name, task):
    m = _method(name)
    space = m.search_space(task)
    if m.role == "floor":
        assert space == {} and m.stages == (Stage("fit"),), f"{name}: a floor searches nothing"
        return
    assert space, f"{name}: empty search space"
    consumers = {k: [st.name for st in m.stages if k in st.consumes] for k in space}
    for key, spec in space.items():
        assert isinstance(spec, Param), f"{name}: {key} is a {type(spec).__name__}, not a spec"
        stage, _, param = key.partition(".")
        assert param, f"{name}: {key!r} is not stage-qualified ('<stage>.<param>')"
        assert stage in consumers[key], \
            f"{name}: {key!r} is named after stage {stage!r}, consumed by {consumers[key]}"
    assert space_size(space) >= 1


@method_names
@task_params
def test_stage_consumption_covers_the_space(name, task):
    m = _method(name)
    unconsumed = sorted(set(m.search_space(task)) - m.consumed())
    assert not unconsumed, (f"method {name!r} on {task.name}: space keys no stage consumes: "
                            f"{unconsumed} (they would not enter any stage's cache key)")


def test_no_method_has_unconsumed_space_keys():
    """One report over every method and task (the parametrized test above fails per cell)."""
    report = {}
    for name in METHODS:
        m = _method(name)
        for task in TASKS:
            extra = set(m.search_space(task)) - m.consumed()
            if extra:
                report.setdefault(name, set()).update(extra)
    assert report == {}, f"space keys that no stage consumes: {report}"


def _check_optuna(spec: Param, dist) -> None:
    import optuna.distributions as od

    if isinstance(spec, LogFloat):
        assert isinstance(dist, od.FloatDistribution) and dist.log
        assert (dist.low, dist.high) == (spec.low, spec.high)
    elif isinstance(spec, Float):
        assert isinstance(dist, od.FloatDistribution) and not dist.log
        assert (dist.low, dist.high) == (spec.low, spec.high)
    elif isinstance(spec, IntRange):
        assert isinstance(dist, od.IntDistribution) and not dist.log
        assert (dist.low, dist.high, dist.step) == (spec.low, spec.high, spec.step)
    elif isinstance(spec, Choice):
        assert isinstance(dist, od.CategoricalDistribution)
        assert tuple(dist.choices) == tuple(spec.options)
    else:  # pragma: no cover - a new spec type needs a branch here and in the adapters
        raise AssertionError(f"no Optuna check for {type(spec).__name__}")


def _check_tune(spec: Param, dom) -> None:
    from ray.tune.search import sample

    if isinstance(spec, Fixed):
        assert dom == spec.value          # a constant in param_space, not a domain
        return
    if isinstance(spec, LogFloat):
        assert isinstance(dom, sample.Float) and isinstance(dom.get_sampler(), sample.LogUniform)
        assert (dom.lower, dom.upper) == (spec.low, spec.high)
    elif isinstance(spec, Float):
        assert isinstance(dom, sample.Float) and isinstance(dom.get_sampler(), sample.Uniform)
        assert (dom.lower, dom.upper) == (spec.low, spec.high)
    elif isinstance(spec, IntRange):
        assert isinstance(dom, sample.Integer)
        sampler = dom.get_sampler()
        if spec.step > 1:
            assert isinstance(sampler, sample.Quantized) and sampler.q == spec.step
            assert (dom.lower, dom.upper) == (spec.low, spec.high)        # qrandint: inclusive
        else:
            assert (dom.lower, dom.upper) == (spec.low, spec.high + 1)    # randint: exclusive
    elif isinstance(spec, Choice):
        assert isinstance(dom, sample.Categorical)
        assert tuple(dom.categories) == tuple(spec.options)
    else:  # pragma: no cover
        raise AssertionError(f"no Ray Tune check for {type(spec).__name__}")
    # whatever Ray samples must lie in the spec
    for value in np.atleast_1d(dom.sample(size=64, random_state=np.random.default_rng(0))):
        value = value.item() if isinstance(value, np.generic) else value
        assert spec.contains(value), f"Ray sampled {value!r} outside {spec.describe()}"


@method_names
@task_params
def test_space_translates_to_optuna(name, task):
    space = _method(name).search_space(task)
    dists = to_optuna(space)
    assert set(dists) == set(searched(space)), "Optuna gets exactly the searched (non-Fixed) keys"
    for key, dist in dists.items():
        _check_optuna(space[key], dist)


@method_names
@task_params
def test_space_translates_to_tune(name, task):
    space = _method(name).search_space(task)
    domains = to_tune(space)
    assert set(domains) == set(space), "Tune's param_space carries every key (Fixed as constants)"
    for key, dom in domains.items():
        _check_tune(space[key], dom)


@method_names
@task_params
def test_sweep_optuna_space_matches_the_adapter(name, task):
    """The sweep hands ``to_tune(space)`` to Ray's OptunaSearch, which converts it again: what
    Optuna samples there must be what ``to_optuna`` says."""
    from ray.tune.search.optuna import OptunaSearch

    space = _method(name).search_space(task)
    assert OptunaSearch.convert_search_space(to_tune(space)) == to_optuna(space)


# ----------------------------------------------------------------------------- defaults
@method_names
@task_params
def test_defaults_lie_in_the_space(name, task):
    m = _method(name)
    space, defaults = m.search_space(task), m.defaults(task)
    # the defaults are the first trial of every search: every key of the space, nothing else
    assert set(defaults) == set(space)
    assert check_in_space(defaults, space) == []
    m.check_config(task, defaults)   # what the trial loop calls first


@method_names
@task_params
def test_test_config_lies_in_the_space(name, task):
    m = _method(name)
    space, cfg = m.search_space(task), m.test_config(task)
    assert set(cfg) == set(space)
    assert check_in_space(cfg, space) == []


# ----------------------------------------------------------------------------- end to end
def _assert_ran(out: dict, epochs: int, metric: str = "val_nrmse") -> None:
    assert out["status"] == "ok", out.get("error")
    value = out["metrics"][metric]
    assert isinstance(value, float) and math.isfinite(value), f"{metric} = {value!r}"
    history = out["history"]
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1)), \
        "the history has one row per fine-tuning epoch"
    assert all(math.isfinite(row[metric]) for row in history)
    assert 1 <= out["metrics"]["best_epoch"] <= epochs
    assert value == pytest.approx(min(row[metric] for row in history))   # nRMSE: lower is better


def _epochs(name: str) -> int:
    """Epochs a run reports: a floor fits once (one report), the others fine-tune."""
    return 1 if _method(name).role == "floor" else TINY.finetune_epochs


def _skip_unsupported(name: str, task: str) -> None:
    """A method that declares it cannot run the task (a skipped cell in a sweep) is not run."""
    from harness.suites import get_suite

    ok, why = _method(name).supports(get_suite("pdebench")[task])
    if not ok:
        assert why, f"{name} declines {task} without a reason"
        pytest.skip(f"{name} does not support {task}: {why}")


@method_names
def test_test_config_runs_end_to_end_1d(name, tiny_root):
    from recraft.run import run_one

    _skip_unsupported(name, TASK_1D)
    out = run_one(name, TASK_1D, tiny_root, profile=TINY, test_config=True)
    _assert_ran(out, _epochs(name))
    assert out["data_source"] == "synthetic"


@method_names
def test_test_config_runs_end_to_end_2d(name, tiny_root):
    from recraft.run import run_one

    _skip_unsupported(name, TASK_2D)
    out = run_one(name, TASK_2D, tiny_root, profile=TINY, test_config=True)
    _assert_ran(out, _epochs(name))


def test_final_phase_reports_the_test_metric(tiny_root):
    """In the final phase the trial reads the test split and returns ``test_<metric>``."""
    from recraft.run import run_one

    out = run_one("nft", TASK_1D, tiny_root, profile=TINY, test_config=True, phase="final", seed=1)
    _assert_ran(out, TINY.finetune_epochs)
    assert math.isfinite(out["metrics"]["test_nrmse"])
    assert "test_nrmse" in out["history"][-1]


# ----------------------------------------------------------------------------- adapter edge
def test_tune_int_grid_not_anchored_at_zero():
    """tune.qrandint counts its grid from 0; an IntRange(1, 9, 2) must still sample 1, 3, ... 9."""
    spec = IntRange(1, 9, 2)
    dom = to_tune({"finetune.k": spec})["finetune.k"]
    values = {v.item() if isinstance(v, np.generic) else v
              for v in dom.sample(size=200, random_state=np.random.default_rng(0))}
    assert values <= {1, 3, 5, 7, 9}, f"Ray samples {sorted(values)} for {spec.describe()}"
