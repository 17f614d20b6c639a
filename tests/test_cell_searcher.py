"""The engine's per-cell searcher: defaults first, stage-1 groups, final runs, save/restore.

These drive the real ``CellSearcher`` (real Ray ``OptunaSearch`` and Optuna TPE) the way Tune
does (suggest, results, complete), without starting trials: what is checked is which
configurations a search proposes.
"""
from __future__ import annotations

import math

import pytest

from harness.engine import CELL_KEY, PHASE_KEY, CellPlan, CellSearcher, method_config
from harness.methods.discovery import get_method
from harness.suites import get_suite

TASK = get_suite("pdebench")["burgers"]


def plan_for(method_name: str, *, num_samples: int, reuse: int, seeds: int = 0) -> CellPlan:
    m = get_method(method_name)
    return CellPlan.of(TASK, m, num_samples=num_samples, seeds=seeds, max_t=4, grace_period=1,
                       stage_reuse=reuse)


def run_search(searcher: CellSearcher, n: int, start: int = 0) -> list[dict]:
    """Suggest and complete ``n`` trials one at a time; the value depends on the config."""
    configs = []
    for i in range(start, start + n):
        tid = f"t{i}"
        cfg = searcher.suggest(tid)
        assert isinstance(cfg, dict), f"trial {i}: searcher returned {cfg!r}"
        configs.append(cfg)
        value = abs(math.log10(cfg["finetune.lr"]) + 3.0) + 0.01 * i
        searcher.on_trial_result(tid, {"val_nrmse": value})
        searcher.on_trial_complete(tid, {"val_nrmse": value})
    return configs


def shared_part(cfg: dict, keys) -> tuple:
    return tuple(cfg[k] for k in keys)


def test_recraft_trials_share_stage1_in_groups_and_still_search_finetuning():
    plan = plan_for("recraft", num_samples=8, reuse=4)
    assert set(plan.shared) == {"align.epsilon", "align.fa_steps", "align.fld_epochs", "align.lr"}
    configs = run_search(CellSearcher([plan]), 8)
    groups = [configs[0:4], configs[4:8]]
    for g in groups:
        assert len({shared_part(c, plan.shared) for c in g}) == 1      # one stage-1 config
        assert len({c["finetune.lr"] for c in g}) == 4                 # fine-tuning still drawn
    assert shared_part(groups[0][0], plan.shared) != shared_part(groups[1][0], plan.shared)
    # the paper defaults lead the first group
    first = method_config(configs[0])
    for k, v in plan.defaults.items():
        assert first[k] == pytest.approx(v)
    assert all(c[PHASE_KEY] == "search" and c[CELL_KEY] == plan.key for c in configs)


def test_reuse_one_draws_stage1_every_trial():
    plan = plan_for("recraft", num_samples=5, reuse=1)
    configs = run_search(CellSearcher([plan]), 5)
    assert len({c["align.lr"] for c in configs}) == 5


def test_method_without_a_cached_stage_is_unaffected():
    plan = plan_for("nft", num_samples=4, reuse=4)
    assert plan.shared == ()
    configs = run_search(CellSearcher([plan]), 4)
    assert len({c["finetune.lr"] for c in configs}) == 4


def test_group_survives_save_and_restore(tmp_path):
    plan = plan_for("recraft", num_samples=6, reuse=3)
    s1 = CellSearcher([plan])
    before = run_search(s1, 2)               # mid-group: one more follower is due
    s1.save(str(tmp_path / "searcher.pkl"))
    s2 = CellSearcher([plan_for("recraft", num_samples=6, reuse=3)])
    s2.restore(str(tmp_path / "searcher.pkl"))
    after = run_search(s2, 4, start=2)
    assert shared_part(after[0], plan.shared) == shared_part(before[0], plan.shared)
    assert shared_part(after[1], plan.shared) != shared_part(before[0], plan.shared)
    assert shared_part(after[1], plan.shared) == shared_part(after[3], plan.shared)


def test_final_runs_use_the_best_search_config_with_new_seeds():
    plan = plan_for("recraft", num_samples=4, reuse=2, seeds=2)
    s = CellSearcher([plan])
    configs = run_search(s, 4)
    best = min(configs, key=lambda c: abs(math.log10(c["finetune.lr"]) + 3.0)
               + 0.01 * configs.index(c))
    finals = [s.suggest("f0"), s.suggest("f1")]
    assert [f[PHASE_KEY] for f in finals] == ["final", "final"]
    assert [f["harness.seed"] for f in finals] == [1, 2]
    for f in finals:
        assert method_config(f) == method_config(best)


@pytest.mark.parametrize("field,value", [("num_samples", 0), ("stage_reuse", 0)])
def test_a_plan_that_could_never_finish_is_refused(field, value):
    kw = dict(num_samples=2, reuse=2)
    kw["reuse" if field == "stage_reuse" else field] = value
    with pytest.raises(ValueError, match=f"{field} must be >= 1"):
        plan_for("recraft", **kw)


def test_free_slots_go_to_the_last_cell_and_followers_wait_for_their_leader():
    """Two slots, one cell: two trials run at once; a follower starts only after its leader
    reported (its stage 1 is cached by then), otherwise a new group is opened."""
    plan = plan_for("recraft", num_samples=6, reuse=2)
    s = CellSearcher([plan])
    a, b = s.suggest("a"), s.suggest("b")          # both in flight: b cannot follow a yet
    assert isinstance(a, dict) and isinstance(b, dict)
    assert shared_part(a, plan.shared) != shared_part(b, plan.shared)
    s.on_trial_result("a", {"val_nrmse": 0.5})       # a's stage 1 is done
    c = s.suggest("c")
    assert shared_part(c, plan.shared) == shared_part(a, plan.shared)
    assert c["finetune.lr"] != a["finetune.lr"]
    for tid in ("a", "b", "c"):
        s.on_trial_complete(tid, {"val_nrmse": 0.5})
    d = s.suggest("d")                                # b's group still has a follower slot
    assert shared_part(d, plan.shared) == shared_part(b, plan.shared)


def test_with_two_cells_each_keeps_one_trial_in_flight():
    p1 = plan_for("recraft", num_samples=3, reuse=1)
    p2 = plan_for("nft", num_samples=3, reuse=1)
    s = CellSearcher([p1, p2])
    first, second = s.suggest("x"), s.suggest("y")
    assert {first[CELL_KEY], second[CELL_KEY]} == {p1.key, p2.key}


def test_methods_try_the_same_fine_tuning_learning_rates():
    """Common random numbers: NFT and RECRAFT cells draw the same finetune.lr in each trial."""
    rec = run_search(CellSearcher([plan_for("recraft", num_samples=5, reuse=2)]), 5)
    nft = run_search(CellSearcher([plan_for("nft", num_samples=5, reuse=2)]), 5)
    assert [c["finetune.lr"] for c in rec] == [c["finetune.lr"] for c in nft]


def test_restore_refuses_a_checkpoint_of_the_old_optuna_search_engine(tmp_path):
    import pickle

    from ray.tune.search.optuna import OptunaSearch

    plan = plan_for("nft", num_samples=2, reuse=1)
    old = CellSearcher([plan])
    state = dict(old.__dict__, subs={plan.key: OptunaSearch(metric=plan.metric, mode=plan.mode)})
    path = tmp_path / "searcher.pkl"
    path.write_bytes(pickle.dumps(state))
    with pytest.raises(ValueError, match="older version of the harness.*new --name"):
        CellSearcher([plan]).restore(str(path))


def test_selection_counts_the_result_tune_hands_only_to_on_trial_complete():
    """Tune passes a trial's last result (the epoch that ended it, or that ASHA stopped it on)
    to ``on_trial_complete`` only: selection must count it. Trial t0 is worse until its last
    epoch, where it beats t1; the final runs use t0's configuration."""
    plan = plan_for("nft", num_samples=2, reuse=1, seeds=1)
    s = CellSearcher([plan])
    c0, c1 = s.suggest("t0"), s.suggest("t1")
    s.on_trial_result("t0", {"val_nrmse": 0.9, "training_iteration": 1})
    s.on_trial_complete("t0", {"val_nrmse": 0.1, "training_iteration": 2})
    s.on_trial_result("t1", {"val_nrmse": 0.5, "training_iteration": 1})
    s.on_trial_complete("t1", {"val_nrmse": 0.5, "training_iteration": 2})
    final = s.suggest("f0")
    assert final[PHASE_KEY] == "final"
    assert method_config(final) == method_config(c0) != method_config(c1)
