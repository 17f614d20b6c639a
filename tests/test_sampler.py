"""Common random numbers: a parameter's start-up draws depend on (seed, name, trial) only."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from harness.sampler import common_random_tpe, common_uniform, value_from_uniform

optuna.logging.set_verbosity(optuna.logging.WARNING)
LR = FloatDistribution(1e-5, 1e-1, log=True)


def draws(space: dict, seed: int, n: int) -> list[dict]:
    study = optuna.create_study(sampler=common_random_tpe(seed))
    out = []
    for i in range(n):
        t = study.ask(fixed_distributions=space)
        out.append(t.params)
        study.tell(t, float(i))
    return out


def test_shared_parameter_gets_the_same_values_whatever_else_is_sampled():
    with_extra = draws({"align.epsilon": CategoricalDistribution([0.1, 0.5, 0.9]),
                        "align.lr": LR, "finetune.lr": LR}, seed=0, n=6)
    alone = draws({"finetune.lr": LR}, seed=0, n=6)
    assert [d["finetune.lr"] for d in with_extra] == [d["finetune.lr"] for d in alone]
    assert len({d["finetune.lr"] for d in alone}) == 6
    # and the other parameters are not copies of it
    assert [d["align.lr"] for d in with_extra] != [d["finetune.lr"] for d in with_extra]


def test_seed_changes_the_draws():
    a = [d["finetune.lr"] for d in draws({"finetune.lr": LR}, seed=0, n=4)]
    b = [d["finetune.lr"] for d in draws({"finetune.lr": LR}, seed=1, n=4)]
    assert a != b


def test_common_uniform_is_stable_and_in_range():
    u = common_uniform(0, "finetune.lr", 3)
    assert u == common_uniform(0, "finetune.lr", 3) and 0.0 <= u < 1.0
    assert u != common_uniform(0, "finetune.lr", 4)


@pytest.mark.parametrize("dist,lo,hi", [
    (FloatDistribution(1e-5, 1e-1, log=True), 1e-5, 1e-1),
    (FloatDistribution(0.0, 1.0, step=0.25), 0.0, 1.0),
    (IntDistribution(20, 100, step=20), 20, 100),
    (IntDistribution(1, 8), 1, 8),
])
def test_values_cover_the_range_and_respect_steps(dist, lo, hi):
    vals = [value_from_uniform(dist, u / 1000) for u in range(1001)]   # u = 1.0 included
    assert min(vals) == pytest.approx(lo) and max(vals) == pytest.approx(hi)
    if getattr(dist, "step", None):
        assert all(math.isclose((v - lo) / dist.step, round((v - lo) / dist.step)) for v in vals)
    if isinstance(dist, FloatDistribution) and dist.log:
        mid = value_from_uniform(dist, 0.5)
        assert mid == pytest.approx(1e-3)           # log-uniform: the geometric middle


def test_categorical_choices_are_equally_likely():
    dist = CategoricalDistribution(["a", "b", "c", "d"])
    vals = [value_from_uniform(dist, u / 400) for u in range(400)]
    assert {v: vals.count(v) for v in "abcd"} == {"a": 100, "b": 100, "c": 100, "d": 100}


def test_draws_pair_by_role_across_keys_and_ranges():
    """A method whose main learning rate has its own key and range (a specialist model trained
    from scratch) gets the same draws as ``finetune.lr``, on the same quantile of its range."""
    import math

    from harness.methods.space import MAIN_LR, LogFloat, roles, to_optuna

    def role_draws(space: dict, n: int) -> list[dict]:
        study = optuna.create_study(sampler=common_random_tpe(0, roles(space)))
        out = []
        for i in range(n):
            t = study.ask(fixed_distributions=to_optuna(space))
            out.append(t.params)
            study.tell(t, float(i))
        return out

    finetune = role_draws({"finetune.lr": LogFloat(1e-5, 1e-3, role=MAIN_LR)}, 6)
    own = role_draws({"train.lr": LogFloat(1e-4, 1e-2, role=MAIN_LR),
                      "train.width": LogFloat(8, 64)}, 6)
    unpaired = role_draws({"train.lr": LogFloat(1e-4, 1e-2)}, 6)
    for a, b, c in zip(finetune, own, unpaired):
        # the same quantile of each range: the specialist tries 10x the shared draw
        assert math.log10(b["train.lr"]) == pytest.approx(math.log10(a["finetune.lr"]) + 1)
    # without the role the draws are not paired
    assert [round(math.log10(c["train.lr"]) - 1, 9) for c in unpaired] != \
        [round(math.log10(a["finetune.lr"]), 9) for a in finetune]
