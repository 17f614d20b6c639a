"""The sweep's searcher: every cell's Optuna study multiplexed in one Tune experiment.

Round-robin over the cells, preferably one trial in flight per cell so TPE learns from every
finished trial (more only for slots no other cell can use); a two-stage method's trials are
grouped by stage-1 configuration (``stage_reuse``); once a cell's search is over, its final runs
are queued: the selected configuration with N seeds, on data that includes the test split.
"""
from __future__ import annotations

import math
import time
from typing import Mapping, Callable

from ray.tune.search import Searcher

from harness.engine.plan import CellPlan
from harness.engine.study import CellStudy
from harness.keys import (CELL_KEY, FINAL, PHASE_KEY, SEARCH, SEED_KEY, TRAIN_LOOP_KEY,
                          method_config)
from harness.methods.space import roles, searched, to_optuna


def make_sampler(seed: int, roles: Mapping[str, str] | None = None):
    """Each cell's Optuna sampler: TPE whose random start-up draws are common random numbers,
    so methods sharing a parameter (by key, or by role) try the same values of it in the same
    trials."""
    from harness.sampler import common_random_tpe

    return common_random_tpe(seed, roles)


class CellSearcher(Searcher):
    """One Optuna study per cell, multiplexed; then each cell's final seeded runs."""

    def __init__(self, plans: list[CellPlan], nested: bool = False,
                 on_search_done: Callable[[str], None] | None = None,
                 study_storage: str | None = None):
        super().__init__(metric=None, mode=None)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)   # one study per cell: no log line each

        self.plans = {p.key: p for p in plans}
        self.order = [p.key for p in plans]
        self.nested = nested
        self.on_search_done = on_search_done
        self.study_storage = study_storage  # URL of harness.studies' storage, or None
        self.subs: dict[str, CellStudy | None] = {}
        for p in plans:
            space = to_optuna(p.space)
            points = [{k: p.defaults[k] for k in searched(p.space)}]   # paper defaults first
            self.subs[p.key] = CellStudy(space, p.mode, make_sampler(p.search_seed, roles(p.space)),
                                         points) if space else None
        self.state = {p.key: {"suggested": 0, "completed": 0, "in_flight": set(), "best": None,
                              "best_config": None, "finals": 0, "finals_done": 0, "searched": False,
                              "groups": []}
                      for p in plans}
        self.trial_cell: dict[str, tuple[str, str]] = {}
        self.trial_config: dict[str, dict] = {}
        self.trial_best: dict[str, float] = {}

    # Tune passes the experiment's metric/mode/config; each cell has its own.
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def _wrap(self, cfg: dict) -> dict:
        return {TRAIN_LOOP_KEY: cfg} if self.nested else cfg

    def finished(self) -> bool:
        """Whether every cell's search and final runs have all been suggested."""
        return all(self._cell_done(k) for k in self.order)

    def _cell_done(self, key: str) -> bool:
        st, plan = self.state[key], self.plans[key]
        if not st["searched"]:
            return False
        if st["best_config"] is None:
            return True
        return st["finals"] >= plan.seeds

    def suggest(self, trial_id: str):
        return self._suggest_final(trial_id) or self._suggest_search(trial_id) or \
            (Searcher.FINISHED if self.finished() else None)

    def _suggest_final(self, trial_id: str) -> dict | None:
        # final runs first: they finish a cell
        for key in self.order:
            st, plan = self.state[key], self.plans[key]
            if st["searched"] and st["best_config"] is not None and st["finals"] < plan.seeds:
                st["finals"] += 1
                self.trial_cell[trial_id] = (key, FINAL)
                cfg = dict(st["best_config"], **{SEED_KEY: st["finals"], CELL_KEY: key,
                                                 PHASE_KEY: FINAL})
                return self._wrap(cfg)
        return None

    def _suggest_search(self, trial_id: str) -> dict | None:
        # cells in plan order, each with at most ``in_flight`` (1) trials running: a few cells
        # progress at once and finish early (their rows land and a resumed sweep skips them),
        # instead of every cell starting before any ends. Only when no cell can take the free
        # slot that way (the last cells of a sweep, a single-cell search) may a cell run more, so
        # trial slots never sit idle while trials are left to run
        for limited in (True, False):
            for key in self.order:
                st, plan = self.state[key], self.plans[key]
                if st["searched"] or st["suggested"] >= plan.num_samples or \
                        (limited and len(st["in_flight"]) >= plan.in_flight):
                    continue
                params = self._suggest_in_group(key, trial_id) \
                    if self.subs[key] is not None else {}
                if params is None:
                    continue
                st["suggested"] += 1
                st["in_flight"].add(trial_id)
                self.trial_cell[trial_id] = (key, SEARCH)
                cfg = dict(params, **plan.fixed, **{SEED_KEY: plan.search_seed, CELL_KEY: key,
                                                    PHASE_KEY: SEARCH})
                self.trial_config[trial_id] = method_config(cfg)
                return self._wrap(cfg)
        return None

    def _suggest_in_group(self, key: str, trial_id: str) -> dict | None:
        """The cell's next draw; within a stage-1 group the cached stage's parameters are fixed.

        A group is opened by a trial that draws every parameter (its leader). Once the leader has
        reported (its stage 1 is done and cached), up to ``stage_reuse - 1`` followers keep the
        group's shared parameters: each is an Optuna trial enqueued with only those, so TPE
        samples the rest from everything the study has seen. A follower never starts while its
        leader is still in stage 1 (it would miss the cache and compute stage 1 again); with
        several trials in flight a new group is opened instead.
        """
        st, plan, sub = self.state[key], self.plans[key], self.subs[key]
        grouped = bool(plan.shared) and plan.stage_reuse > 1
        groups = st.setdefault("groups", [])
        open_group = next((g for g in groups if g["left"] > 0 and g["ready"]), None) \
            if grouped else None
        if open_group is not None:
            sub.enqueue(open_group["params"])
        params = sub.ask(trial_id)
        if not grouped:
            return params
        if open_group is not None:
            open_group["left"] -= 1
        else:
            groups.append({"params": {k: params[k] for k in plan.shared if k in params},
                           "left": plan.stage_reuse - 1, "leader": trial_id, "ready": False})
        return params

    def _leader_ready(self, key: str, trial_id: str) -> None:
        for g in self.state[key].get("groups", []):
            if g["leader"] == trial_id:
                g["ready"] = True

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        key, phase = self.trial_cell.get(trial_id, (None, None))
        if phase != SEARCH:
            return
        self._leader_ready(key, trial_id)   # a trial reports only after its stage 1
        plan = self.plans[key]
        v = result.get(plan.metric)
        if v is None or result.get("diverged") or not math.isfinite(v):
            return
        if plan.better(v, self.trial_best.get(trial_id)):
            self.trial_best[trial_id] = float(v)
        sub = self.subs.get(key)
        if sub is not None and "training_iteration" in result:
            sub.report(trial_id, int(result["training_iteration"]), v)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        key, phase = self.trial_cell.get(trial_id, (None, None))
        if key is None:
            return
        st, plan = self.state[key], self.plans[key]
        if phase == FINAL:
            st["finals_done"] += 1
            return
        self._leader_ready(key, trial_id)   # ended (even failed): its followers may start
        bad = error or not result or result.get("diverged") or \
            not math.isfinite(result.get(plan.metric, math.nan))
        sub = self.subs[key]
        if sub is not None:
            if not bad and "training_iteration" in result:
                # Tune hands a trial's last result to on_trial_complete only
                sub.report(trial_id, int(result["training_iteration"]), result[plan.metric])
            sub.tell(trial_id, None if bad else result.get(plan.metric), failed=bool(bad))
            self._save_study(key)
        st["in_flight"].discard(trial_id)
        st["completed"] += 1
        if not bad and plan.better(result[plan.metric], self.trial_best.get(trial_id)):
            # the last epoch's result (or the one ASHA stopped on) reaches only this method:
            # without it a trial whose last epoch was its best would be judged on an earlier one
            self.trial_best[trial_id] = float(result[plan.metric])
        best = self.trial_best.get(trial_id)
        if not bad and best is not None and result is not None and plan.better(best, st["best"]):
            st["best"], st["best_config"] = best, dict(self.trial_config[trial_id])
        if st["completed"] >= plan.num_samples and not st["searched"]:
            st["searched"] = True
            st["search_finished_at"] = time.time()
            if st["best_config"] is not None and plan.seeds > 0 and self.on_search_done is not None:
                self.on_search_done(key)

    def _save_study(self, key: str) -> None:
        """Copy the cell's study to the sweep's study storage (see :mod:`harness.studies`)."""
        from harness.studies import study_name, try_save_study

        plan, sub = self.plans[key], self.subs.get(key)
        url = getattr(self, "study_storage", None)     # None in an older harness's checkpoint
        if url is None or sub is None:
            return
        try_save_study(url, study_name(plan.task, plan.method), sub.study,
                       {"cell": key, "metric": plan.metric, "mode": plan.mode,
                        "num_samples": plan.num_samples})

    def save(self, checkpoint_path: str) -> None:
        """Tune checkpoints the searcher with the experiment; resume restores every study."""
        import cloudpickle

        with open(checkpoint_path, "wb") as fh:
            cloudpickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as fh:
            state = pickle.load(fh)
        old = sorted(k for k, s in state.get("subs", {}).items()
                     if s is not None and not isinstance(s, CellStudy))
        if old:
            # checkpoints of the engine before its studies were driven through Optuna directly
            # held Ray OptunaSearch objects; resuming them here would fail at the first trial
            raise ValueError(
                f"{checkpoint_path}: this experiment was checkpointed by an older version of the "
                f"harness (cells {', '.join(old[:3])} hold Ray OptunaSearch state); finish it with "
                f"that version, or start the sweep again under a new --name")
        self.__dict__.update(state)

    def get_state(self) -> dict:
        return {"state": self.state, "trial_cell": self.trial_cell, "trial_best": self.trial_best,
                "trial_config": self.trial_config, "subs": dict(self.subs)}

    def set_state(self, state: dict) -> None:
        self.state, self.trial_cell = state["state"], state["trial_cell"]
        self.trial_best = state["trial_best"]
        self.trial_config = state.get("trial_config", {})
        for k, s in state["subs"].items():
            if s is not None and self.subs.get(k) is not None:
                self.subs[k] = s
