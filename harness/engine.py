"""The sweep engine: every (task, method) search of a sweep inside ONE Ray Tune experiment.

Each cell keeps its own Optuna TPE study (seeded, paper defaults first) and its own ASHA
scheduler, so each cell is an independent search with the same budget and grace period; but all
cells share one Tuner, one trial-actor pool and one experiment checkpoint:

* :class:`CellSearcher` multiplexes the cells' Optuna searchers (round-robin, preferably one
  trial in flight per cell so TPE learns from every finished trial; more only for slots no other
  cell can use), groups a two-stage method's trials by stage-1 configuration (``stage_reuse``),
  and, once a cell's search is over, queues its final runs: the selected configuration with N
  seeds, on data that includes the test split.
* :class:`CellScheduler` routes each search trial to its cell's ASHA and never stops final runs.
* :class:`SweepCallback` mirrors trials into MLflow, keeps the live progress matrix, and writes a
  cell's rows to the results table (then its "done" marker) when its last final run ends.

Because trial actors are reused across cells (``reuse_actors``), a trial's fixed cost is a
config reset on a warm process instead of a new process that imports torch, transformers and POT
— the largest cost of short trials on a small machine.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from harness import provenance
from harness.methods.space import Fixed, Param, searched, to_optuna
from harness.results import append_rows
from harness.search import TRAIN_LOOP_KEY, config_hash
from harness.trial.loop import SEED_KEY

CELL_KEY = "harness.cell"
PHASE_KEY = "harness.phase"
REGISTRY_ACTOR = "harness-data-registry"
HARNESS_KEYS = (CELL_KEY, PHASE_KEY, SEED_KEY)


# ----------------------------------------------------------------------------- plans
@dataclass
class CellPlan:
    """What one cell searches and how (picklable; part of the experiment checkpoint)."""

    key: str                      # "task/method"
    task: str
    method: str
    metric: str                   # reported key, e.g. "val_nrmse"
    mode: str                     # "min" | "max"
    space: dict[str, Param]
    defaults: dict[str, Any]
    num_samples: int
    seeds: int
    max_t: int
    grace_period: int
    search_seed: int = 0
    #: searched parameters of the method's cached stages, and how many consecutive search trials
    #: keep one configuration of them (see ``Profile.stage_reuse``)
    shared: tuple[str, ...] = ()
    stage_reuse: int = 1
    #: search trials of this cell preferably running at once: 1 lets TPE learn from every
    #: finished trial; the searcher exceeds it only for a slot no other cell can use
    in_flight: int = 1

    @classmethod
    def of(cls, task, method, *, num_samples: int, seeds: int, max_t: int, grace_period: int,
           search_seed: int = 0, stage_reuse: int = 1, key: str | None = None,
           defaults: Mapping[str, Any] | None = None) -> "CellPlan":
        """The plan of ``method`` on ``task``: key, metric, space, defaults and the cached stages'
        shared parameters come from them; budgets and search settings from the caller."""
        space = method.search_space(task)
        if not searched(space):
            num_samples = 1   # nothing to search (e.g. a floor): more trials would repeat one config
        return cls(key=key or f"{task.name}/{method.name}", task=task.name, method=method.name,
                   metric=f"val_{task.metric.name}", mode=task.metric.direction,
                   space=space,
                   defaults=dict(method.defaults(task) if defaults is None else defaults),
                   num_samples=num_samples, seeds=seeds, max_t=max_t, grace_period=grace_period,
                   search_seed=search_seed, shared=method.shared_stage_params(task),
                   stage_reuse=stage_reuse)

    def __post_init__(self):
        # a cell with no search trial would never end its search, and the experiment would wait
        bad = [f"{name} must be >= {low} (got {value})"
               for name, value, low in (("num_samples", self.num_samples, 1),
                                        ("seeds", self.seeds, 0),
                                        ("stage_reuse", self.stage_reuse, 1),
                                        ("in_flight", self.in_flight, 1)) if value < low]
        if bad:
            raise ValueError(f"cell {self.key}: " + "; ".join(bad))

    @property
    def fixed(self) -> dict[str, Any]:
        return {k: p.value for k, p in self.space.items() if isinstance(p, Fixed)}


def unwrap(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flat trial config (TorchTrainer trials nest it under ``train_loop_config``)."""
    return dict(config.get(TRAIN_LOOP_KEY, config))


def method_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial config without the harness's own keys."""
    return {k: v for k, v in unwrap(config).items() if k not in HARNESS_KEYS}


# ----------------------------------------------------------------------------- data registry
class DataRegistry:
    """Named actor: ``"search:<task>"`` / ``"final:<cell>"`` -> object ref of the TaskData."""

    def __init__(self):
        self.refs: dict[str, list] = {}

    def put(self, key: str, wrapped_ref: list) -> None:
        self.refs[key] = wrapped_ref

    def get(self, key: str) -> list | None:
        return self.refs.get(key)


# The creating process keeps the owning handle: a named actor dies when its owner's references go.
_REGISTRY: dict[str, Any] = {}


def data_registry():
    """The registry actor: created (and kept alive) by the first process that asks — the driver."""
    import ray

    ctx = ray.get_runtime_context()
    job = f"{ctx.get_session_name()}/{ctx.get_job_id()}"   # job ids repeat across clusters
    if job not in _REGISTRY:
        _REGISTRY.clear()
        try:
            _REGISTRY[job] = ray.get_actor(REGISTRY_ACTOR)
        except ValueError:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # on the driver's node: losing a worker node must not lose the sweep's data index
            here = NodeAffinitySchedulingStrategy(node_id=ctx.get_node_id(), soft=False)
            _REGISTRY[job] = ray.remote(num_cpus=0)(DataRegistry).options(
                name=REGISTRY_ACTOR, get_if_exists=True, scheduling_strategy=here).remote()
    return _REGISTRY[job]


def register(key: str, data) -> None:
    """Put ``data`` in the object store (owned by this process) and name it in the registry."""
    import ray

    ray.get(data_registry().put.remote(key, [ray.put(data)]))


_LOCAL_DATA: dict[str, Any] = {}


def fetch(key: str, fallback: Callable[[], Any] | None = None):
    """The TaskData registered under ``key`` (cached per worker process, by object id, so a
    re-registered key is fetched anew). ``fallback`` reads it from disk when nothing is
    registered — after a resumed sweep, for a cell whose search ended before the interruption."""
    import ray

    try:
        wrapped = ray.get(data_registry().get.remote(key))
    except (ValueError, ray.exceptions.RayActorError):
        _REGISTRY.clear()          # a dead handle: look the actor up again next time
        wrapped = None
    if wrapped is None:
        if fallback is None:
            raise KeyError(f"no data registered under {key!r}")
        register(key, fallback())
        wrapped = ray.get(data_registry().get.remote(key))
    oid = wrapped[0].hex()
    if oid not in _LOCAL_DATA:
        if len(_LOCAL_DATA) > 16:
            _LOCAL_DATA.clear()
        _LOCAL_DATA[oid] = ray.get(wrapped[0])
    return _LOCAL_DATA[oid]


def data_key(cell_key: str, task: str, phase: str) -> str:
    return f"search:{task}" if phase == "search" else f"final:{cell_key}"


def cell_data(cell, cell_key: str, phase: str):
    """The data a trial of ``cell`` may read in ``phase`` (search: train+val; final: +test)."""
    def read():
        from harness.suites import get_suite
        from harness.trial.data import load_for_phase

        if not cell.data_root:
            raise KeyError(f"no data registered for {cell_key} ({phase}) and no data_root to read")
        return load_for_phase(get_suite(cell.suite)[cell.task], cell.data_root, cell.profile, phase)

    return fetch(data_key(cell_key, cell.task, phase), fallback=read)


# ----------------------------------------------------------------------------- trainables
def sweep_trainable(config: dict, cells: Mapping[str, tuple] = None) -> None:
    """The light path: one worker, in the (reused) Tune trial actor."""
    import torch

    from harness.trial.loop import tune_trainable

    key, phase = config[CELL_KEY], config[PHASE_KEY]
    cell, method = cells[key]
    torch.set_num_threads(max(1, int(cell.cpus_per_trial)))
    from dataclasses import replace

    data = cell_data(cell, key, phase)
    tune_trainable(method_config(config) | {SEED_KEY: config[SEED_KEY]},
                   cell=replace(cell, phase=phase), method=method, data=data)


def sweep_train_loop(config: dict, cells: Mapping[str, tuple] = None) -> None:
    """The data-parallel path: every TorchTrainer worker runs the same loop."""
    from dataclasses import replace

    import torch

    from harness.trial.loop import trial_body
    from harness.trial.session import TrainSession

    key, phase = config[CELL_KEY], config[PHASE_KEY]
    cell, method = cells[key]
    torch.set_num_threads(max(1, int(cell.cpus_per_trial)))
    data = cell_data(cell, key, phase)
    trial_body(TrainSession(), replace(cell, phase=phase), method, data,
               method_config(config) | {SEED_KEY: config[SEED_KEY]})


def make_trainable(cells: Mapping[str, tuple], workers: int, cpus: float, gpus: float):
    """(trainable, nested): the light function trainable, or one TorchTrainer for DDP trials."""
    import functools

    from ray import tune

    if workers > 1:
        import ray.train
        from ray.train.torch import TorchTrainer

        per_worker = {"CPU": cpus}
        if gpus:
            per_worker["GPU"] = gpus / workers
        trainer = TorchTrainer(functools.partial(sweep_train_loop, cells=cells),
                               scaling_config=ray.train.ScalingConfig(
                                   num_workers=workers, use_gpu=gpus > 0,
                                   resources_per_worker=per_worker, trainer_resources={"CPU": 0}))
        return trainer, True
    def resources(config: Mapping[str, Any]) -> dict[str, float]:
        # per cell: the --cpus/--gpus-per-trial flags, or the method's resources hint
        cell = cells[config[CELL_KEY]][0]
        res = {"cpu": cell.cpus_per_trial}
        if cell.gpus_per_trial:
            res["gpu"] = cell.gpus_per_trial
        return res

    return tune.with_resources(tune.with_parameters(sweep_trainable, cells=cells), resources), False


# ----------------------------------------------------------------------------- searcher
def make_sampler(seed: int):
    """Each cell's Optuna sampler: TPE whose random start-up draws are common random numbers,
    so methods sharing a parameter try the same values of it in the same trials."""
    from harness.sampler import common_random_tpe

    return common_random_tpe(seed)


class CellSearcher(Searcher):
    """One Optuna study per cell, multiplexed; then each cell's final seeded runs."""

    def __init__(self, plans: list[CellPlan], nested: bool = False,
                 on_search_done: Callable[[str], None] | None = None):
        super().__init__(metric=None, mode=None)
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)   # one study per cell: no log line each

        self.plans = {p.key: p for p in plans}
        self.order = [p.key for p in plans]
        self.nested = nested
        self.on_search_done = on_search_done
        self.subs: dict[str, Any] = {}
        for p in plans:
            space = to_optuna(p.space)
            points = [{k: p.defaults[k] for k in searched(p.space)}] if space else None
            self.subs[p.key] = OptunaSearch(space=space, metric=p.metric, mode=p.mode,
                                            sampler=make_sampler(p.search_seed),
                                            points_to_evaluate=points) if space else None
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
        return all(self._cell_done(k) for k in self.order)

    def _cell_done(self, key: str) -> bool:
        st, plan = self.state[key], self.plans[key]
        if not st["searched"]:
            return False
        if st["best_config"] is None:
            return True
        return st["finals"] >= plan.seeds

    def suggest(self, trial_id: str):
        # final runs first: they finish a cell
        for key in self.order:
            st, plan = self.state[key], self.plans[key]
            if st["searched"] and st["best_config"] is not None and st["finals"] < plan.seeds:
                st["finals"] += 1
                self.trial_cell[trial_id] = (key, "final")
                cfg = dict(st["best_config"], **{SEED_KEY: st["finals"], CELL_KEY: key,
                                                 PHASE_KEY: "final"})
                return self._wrap(cfg)
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
                sub = self.subs[key]
                params = self._suggest_in_group(key, trial_id) if sub is not None else {}
                if params is None:
                    continue
                st["suggested"] += 1
                st["in_flight"].add(trial_id)
                self.trial_cell[trial_id] = (key, "search")
                cfg = dict(params, **plan.fixed, **{SEED_KEY: plan.search_seed, CELL_KEY: key,
                                                    PHASE_KEY: "search"})
                self.trial_config[trial_id] = method_config(cfg)
                return self._wrap(cfg)
        return Searcher.FINISHED if self.finished() else None

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
            sub._ot_study.enqueue_trial(dict(open_group["params"]))
        params = sub.suggest(trial_id)
        if params is None or not grouped:
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
        if phase != "search":
            return
        self._leader_ready(key, trial_id)   # a trial reports only after its stage 1
        plan = self.plans[key]
        v = result.get(plan.metric)
        if v is None or result.get("diverged") or not math.isfinite(v):
            return
        old = self.trial_best.get(trial_id)
        if old is None or (v < old if plan.mode == "min" else v > old):
            self.trial_best[trial_id] = float(v)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        key, phase = self.trial_cell.get(trial_id, (None, None))
        if key is None:
            return
        st, plan = self.state[key], self.plans[key]
        if phase == "final":
            st["finals_done"] += 1
            return
        self._leader_ready(key, trial_id)   # ended (even failed): its followers may start
        bad = error or not result or result.get("diverged") or \
            not math.isfinite(result.get(plan.metric, math.nan))
        sub = self.subs[key]
        if sub is not None:
            sub.on_trial_complete(trial_id, None if bad else result, error=bool(bad))
        st["in_flight"].discard(trial_id)
        st["completed"] += 1
        best = self.trial_best.get(trial_id)
        if not bad and best is not None and result is not None:
            better = st["best"] is None or (best < st["best"] if plan.mode == "min" else best > st["best"])
            if better:
                st["best"], st["best_config"] = best, dict(self.trial_config[trial_id])
        if st["completed"] >= plan.num_samples and not st["searched"]:
            st["searched"] = True
            st["search_finished_at"] = time.time()
            if st["best_config"] is not None and plan.seeds > 0 and self.on_search_done is not None:
                self.on_search_done(key)

    def save(self, checkpoint_path: str) -> None:
        """Tune checkpoints the searcher with the experiment; resume restores every study."""
        import cloudpickle

        with open(checkpoint_path, "wb") as fh:
            cloudpickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))

    def get_state(self) -> dict:
        return {"state": self.state, "trial_cell": self.trial_cell, "trial_best": self.trial_best,
                "trial_config": self.trial_config,
                "subs": {k: (s.get_state() if s is not None else None)
                                          for k, s in self.subs.items()}}

    def set_state(self, state: dict) -> None:
        self.state, self.trial_cell = state["state"], state["trial_cell"]
        self.trial_best = state["trial_best"]
        self.trial_config = state.get("trial_config", {})
        for k, s in state["subs"].items():
            if s is not None and self.subs.get(k) is not None:
                self.subs[k].set_state(s)


# ----------------------------------------------------------------------------- scheduler
class CellScheduler(FIFOScheduler):
    """One ASHA per cell for search trials; final runs always continue."""

    def __init__(self, plans: list[CellPlan]):
        super().__init__()
        self.asha = {p.key: ASHAScheduler(time_attr="training_iteration", metric=p.metric,
                                          mode=p.mode, max_t=max(p.max_t, p.grace_period),
                                          grace_period=p.grace_period, reduction_factor=2)
                     for p in plans}

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    @staticmethod
    def _cell(trial) -> tuple[str | None, str | None]:
        cfg = unwrap(trial.config or {})
        return cfg.get(CELL_KEY), cfg.get(PHASE_KEY)

    def _asha(self, trial):
        key, phase = self._cell(trial)
        if phase != "search" or key not in self.asha:
            return None
        return self.asha[key]

    def on_trial_add(self, tune_controller, trial):
        a = self._asha(trial)
        if a is not None:
            a.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        a = self._asha(trial)
        if a is None or result.get("diverged"):
            return TrialScheduler.CONTINUE
        return a.on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        a = self._asha(trial)
        if a is not None and trial.trial_id in a._trial_info:
            a.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        a = self._asha(trial)
        if a is not None and trial.trial_id in a._trial_info:
            a.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial):
        self.on_trial_remove(tune_controller, trial)


# ----------------------------------------------------------------------------- callback
@dataclass
class TrialRecord:
    """What the results table needs from one trial."""

    trial_id: str
    cell: str
    phase: str
    seed: int
    config: dict
    status: str = "running"
    best: float = math.nan
    last: dict = field(default_factory=dict)
    epochs: int = 0
    error: str | None = None
    run_id: str | None = None
    started: float = field(default_factory=time.time)
    wall: float = 0.0


def _numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    skip = {"training_iteration", "timestamp", "time_this_iter_s", "time_total_s", "pid",
            "time_since_restore", "iterations_since_restore", "epoch", "done"}
    return {k: float(v) for k, v in metrics.items()
            if not isinstance(v, bool) and isinstance(v, (int, float)) and k not in skip}


def trial_error_text(trial) -> str:
    """The end of a failed trial's error (from its error.txt), for the results table."""
    path = getattr(trial, "error_file", None)
    try:
        if path and Path(path).exists():
            text = Path(path).read_text(errors="replace").strip()
            lines = [ln for ln in text.splitlines() if ln.strip()]
            # the last line is the exception; keep a little traceback context before it
            return "\n".join(lines[-6:])[-4000:]
    except OSError:
        pass
    return str(getattr(trial, "error_msg", None) or "the trial raised (no error file found)")[-4000:]


def _callback_base():
    from ray.tune import Callback

    return Callback


class SweepCallback(_callback_base()):
    """MLflow mirroring, live progress and the cell's rows, from Tune's trial events."""

    def __init__(self, plans: list[CellPlan], meta: Mapping[str, dict], results_dir: str,
                 tracker=None, sweep_run_id: str | None = None,
                 progress: Callable[[dict], None] | None = None, print_every: float = 5.0):
        self.plans = {p.key: p for p in plans}
        self.meta = meta                    # cell key -> static row fields (task version, ...)
        self.results_dir = results_dir
        self.tracker, self.sweep_run_id = tracker, sweep_run_id
        self.progress, self.print_every = progress, print_every
        self.records: dict[str, TrialRecord] = {}
        self.cell_runs: dict[str, str] = {}
        self.cell_state: dict[str, dict] = {k: {"state": "queued", "best": None} for k in self.plans}
        self.written: set[str] = set()
        self.searcher: CellSearcher | None = None   # set by run_cells (same process)
        self._last_print = 0.0
        self._dirty = True

    # -- helpers
    def _record(self, trial) -> TrialRecord:
        rec = self.records.get(trial.trial_id)
        if rec is None:
            cfg = unwrap(trial.config or {})
            rec = TrialRecord(trial.trial_id, cfg[CELL_KEY], cfg[PHASE_KEY], int(cfg.get(SEED_KEY, 0)),
                              method_config(cfg))
            self.records[trial.trial_id] = rec
        return rec

    def _cell_run(self, key: str) -> str | None:
        if self.tracker is None or not self.sweep_run_id:
            return None
        if key not in self.cell_runs:
            m = self.meta[key]
            attempt = m.get("attempt", 1)
            # a retried cell gets its own MLflow run (the failed attempt's run stays as it was)
            run_key = f"cell:{m['task']}/{m['method']}" + (f"#{attempt}" if attempt > 1 else "")
            self.cell_runs[key] = self.tracker.cell_run(self.sweep_run_id, m["task"], m["method"],
                                                        tags=m["tags"], run_key=run_key)
        return self.cell_runs[key]

    def _open_run(self, rec: TrialRecord) -> None:
        parent = self._cell_run(rec.cell)
        if parent is None or rec.run_id is not None:
            return
        h = config_hash(rec.config)
        tags = dict(self.meta[rec.cell]["tags"], **{"harness.phase": rec.phase,
                                                    "harness.config_hash": h,
                                                    "harness.trial_id": rec.trial_id})
        if rec.phase == "final":
            name, key = f"final-seed-{rec.seed}", f"trial:{rec.cell}:final:{h}:{rec.seed}"
            tags["harness.seed"] = str(rec.seed)
        else:
            name, key = f"trial-{rec.trial_id}", f"trial:{rec.cell}:search:{h}"
        rec.run_id = self.tracker.trial_run(parent, name, rec.config, tags, run_key=key)

    # -- Tune events
    def on_step_begin(self, iteration, trials, **info):
        if getattr(self, "_synced", False):
            return
        self._synced = True
        # after Tuner.restore this callback comes back as it was pickled when the experiment
        # started: rebuild the records of trials that ended before the interruption
        for trial in trials:
            if trial.trial_id in self.records or not trial.config:
                continue
            cfg = unwrap(trial.config)
            if CELL_KEY not in cfg or cfg[CELL_KEY] not in self.plans:
                continue
            rec = self._record(trial)
            rec.last = dict(trial.last_result or {})
            rec.epochs = int(rec.last.get("training_iteration", 0) or 0)
            plan = self.plans[rec.cell]
            try:
                stats = trial.metric_analysis.get(plan.metric) or {}
            except AttributeError:
                stats = {}
            best = stats.get("min" if plan.mode == "min" else "max")
            if best is None:
                best = rec.last.get(plan.metric, math.nan)
            rec.best = float(best) if best is not None else math.nan
            status = trial.status
            if status == "TERMINATED":
                self._end(trial, "ok")
            elif status == "ERROR":
                self._end(trial, "failed", "the trial raised before the sweep was interrupted")
        if self.searcher is not None:
            for key, st in self.searcher.state.items():
                if st.get("searched") and st.get("best_config") is not None:
                    self._open_cell_state(key)

    def _open_cell_state(self, key: str) -> None:
        if key not in self.written:
            self.cell_state[key]["state"] = "final"

    def on_trial_start(self, iteration, trials, trial, **info):
        rec = self._record(trial)
        rec.started = time.time()
        self._open_run(rec)
        cs = self.cell_state[rec.cell]
        cs["state"] = "final" if rec.phase == "final" else "running"
        self._dirty = True

    def on_trial_result(self, iteration, trials, trial, result, **info):
        rec = self._record(trial)
        self._open_run(rec)
        plan = self.plans[rec.cell]
        rec.last = dict(result)
        rec.epochs = int(result.get("training_iteration", rec.epochs) or rec.epochs)
        v = result.get(plan.metric)
        if v is not None and not result.get("diverged") and math.isfinite(v):
            if math.isnan(rec.best) or (v < rec.best if plan.mode == "min" else v > rec.best):
                rec.best = float(v)
            if rec.phase == "search":
                cs = self.cell_state[rec.cell]
                if cs["best"] is None or (v < cs["best"] if plan.mode == "min" else v > cs["best"]):
                    cs["best"] = float(v)
                    self._dirty = True
        if self.tracker is not None and rec.run_id:
            step = int(result.get("epoch", rec.epochs) or rec.epochs)
            self.tracker.log_metrics(rec.run_id, _numeric(result), step=step)

    def _end(self, trial, status: str, error: str | None = None) -> None:
        rec = self._record(trial)
        plan = self.plans[rec.cell]
        if rec.last.get("diverged"):
            status, error = "diverged", "the trial's loss or metric became non-finite or exploded"
        elif status == "ok" and rec.phase == "search" and rec.epochs < plan.max_t:
            status = "stopped"          # early-stopped by ASHA: a valid, shorter trial
        rec.status, rec.error, rec.wall = status, error, time.time() - rec.started
        cs = self.cell_state[rec.cell]      # for the progress view's remaining-time estimate
        cs["finished_trials"] = cs.get("finished_trials", 0) + 1
        if self.tracker is not None and rec.run_id:
            self.tracker.set_tags(rec.run_id, {"harness.status": status,
                                               **({"harness.error": error[:5000]} if error else {})})
            self.tracker.finish(rec.run_id, "FINISHED" if status in ("ok", "stopped") else "FAILED")
        self._maybe_finish_cell(rec.cell)
        self._dirty = True

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, "ok")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, "failed", trial_error_text(trial))

    def on_step_end(self, iteration, trials, **info):
        now = time.time()
        if self.progress is not None and self._dirty and now - self._last_print >= self.print_every:
            self.progress(self.cell_state)
            self._last_print, self._dirty = now, False

    def on_experiment_end(self, trials, **info):
        if self.progress is not None:
            self.progress(self.cell_state)

    # -- cells
    def _maybe_finish_cell(self, key: str) -> None:
        if key not in self.written and \
                done_marker(self.results_dir, key, self.meta[key].get("content", "")).exists():
            # finished before a resume: its rows are already in the table
            self.written.add(key)
            self.cell_state[key]["state"] = "done"
        if key in self.written:
            # a trial of a finished cell that ran at an interruption is rerun by the restore
            # (Tune restores at trial granularity): its result is not written again, and the cell
            # run it reopened is closed again
            run = self.cell_runs.get(key)
            if self.tracker is not None and run and not any(
                    r.status == "running" for r in self.records.values() if r.cell == key):
                self.tracker.finish(run, "FINISHED")
            return
        plan = self.plans[key]
        recs = [r for r in self.records.values() if r.cell == key]
        search = [r for r in recs if r.phase == "search" and r.status != "running"]
        finals = [r for r in recs if r.phase == "final" and r.status != "running"]
        if len(search) < plan.num_samples:
            return
        scored = [r for r in search if r.status in ("ok", "stopped") and math.isfinite(r.best)]
        if scored and len(finals) < plan.seeds:
            return
        self.write_cell(key, search, finals, selected=bool(scored))

    def write_cell(self, key: str, search: list[TrialRecord], finals: list[TrialRecord],
                   selected: bool) -> None:
        m = self.meta[key]
        plan = self.plans[key]
        now = datetime.now(timezone.utc).isoformat()
        base = m["row"]
        rows = []
        for r in search:
            rows.append(dict(base, phase="search", trial_id=r.trial_id, seed=r.seed, split="val",
                             value=r.best, status=r.status, epochs=r.epochs,
                             config_hash=config_hash(r.config),
                             config_json=json.dumps(r.config, sort_keys=True, default=str),
                             mlflow_run_id=r.run_id, node_id=r.last.get("node_id"),
                             wall_seconds=r.wall, finished_at=now, error=r.error))
        test_key = f"test_{plan.metric[len('val_'):]}" if plan.metric.startswith("val_") else "test"
        for r in finals:
            ok = r.status == "ok" and test_key in r.last
            status = r.status if r.status != "ok" or ok else "failed"
            common = dict(base, phase="final", trial_id=f"seed-{r.seed}", seed=r.seed,
                          status=status, epochs=int(r.last.get("best_epoch", 0) or 0) or None,
                          config_hash=config_hash(r.config),
                          config_json=json.dumps(r.config, sort_keys=True, default=str),
                          mlflow_run_id=r.run_id, node_id=r.last.get("node_id"),
                          wall_seconds=r.wall, finished_at=now,
                          error=r.error if ok or r.error else "no test metric was reported")
            rows.append(dict(common, split="test", value=float(r.last[test_key]) if ok else math.nan))
            rows.append(dict(common, split="val", value=r.best if ok else math.nan))
        if not selected:
            reason = "; ".join(sorted({r.error or r.status for r in search}))[:4000]
            rows.append(dict(base, phase="final", trial_id="seed-none", split="test", value=math.nan,
                             status="failed", finished_at=now,
                             error=f"no configuration could be selected: {reason or 'no trial'}"))
        append_rows(self.results_dir, rows, tag=key.replace("/", "__"))
        ok_finals = [r for r in finals if r.status == "ok"]
        searcher_state = self.searcher.state.get(key, {}) if self.searcher is not None else {}
        summary = {"cell": key, "finished_at": time.time(),
                   "search_finished_at": searcher_state.get("search_finished_at"),
                   "trials": len(search), "finals_ok": len(ok_finals),
                   "best_val": min((r.best for r in search if math.isfinite(r.best)), default=None)
                   if plan.mode == "min" else max((r.best for r in search if math.isfinite(r.best)), default=None),
                   "trial_seconds": [round(r.wall, 2) for r in search],
                   "final_seconds": [round(r.wall, 2) for r in finals]}
        marker = done_marker(self.results_dir, key, m.get("content", ""))
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, default=str, indent=1))
        tmp.replace(marker)
        self.written.add(key)
        state = "done" if ok_finals else "failed"
        self.cell_state[key]["state"] = state
        run = self.cell_runs.get(key)
        if self.tracker is not None and run:
            self.tracker.set_tags(run, {"harness.status": state})
            self.tracker.finish(run, "FINISHED" if ok_finals else "FAILED")


def done_marker(results_dir: str | Path, cell_key: str, content: str = "") -> Path:
    """The file whose presence says a cell finished with all its rows written.

    ``content`` is :func:`cell_content_key`: a cell whose task version, method version, search
    space or budgets changed is a different cell and runs again.
    """
    suffix = f"-{content}" if content else ""
    return Path(results_dir) / "cells" / f"{cell_key.replace('/', '__')}{suffix}.json"


def cell_description(task, method, profile, plan: "CellPlan") -> dict[str, Any]:
    """Everything that decides a cell's results, in readable form (for diffs on resume)."""
    return {"task_version": task.version, "method_version": method.version,
            "profile": repr(profile),
            "space": {k: p.describe() for k, p in sorted(plan.space.items())},
            "defaults": json.loads(json.dumps(plan.defaults, default=str)),
            "num_samples": plan.num_samples, "seeds": plan.seeds, "max_t": plan.max_t,
            "grace_period": plan.grace_period, "search_seed": plan.search_seed,
            "stage_reuse": plan.stage_reuse if plan.shared else 1}


def cell_content_key(task, method, profile, plan: "CellPlan") -> str:
    """A content hash of :func:`cell_description`."""
    return config_hash(cell_description(task, method, profile, plan))


def row_meta(cell, method, task, data_source: str, sweep: str, extra_tags: Mapping | None = None) -> dict:
    """Static per-cell fields for rows and MLflow tags."""
    # a method that uses no pretrained body (a floor) records none
    backbone = cell.profile.backbone(task.modality) if getattr(method, "uses_body", True) else None
    row = {"sweep": sweep, "role": getattr(method, "role", "method"), "suite": cell.suite, "task": task.name, "task_version": task.version,
           "method": method.name, "method_version": method.version, "variant_of": method.variant_of,
           "metric": task.metric.name, "direction": task.metric.direction,
           "data_source": data_source, "backbone": backbone, "profile": cell.profile.name,
           "hostname": provenance.hostname(), "git_commit": provenance.git_commit(),
           "packages": provenance.package_versions(), "hardware": provenance.hardware()}
    tags = {"harness.suite": cell.suite, "harness.task": task.name, "harness.method": method.name,
            "harness.task_version": task.version, "harness.method_version": method.version,
            "harness.data_source": data_source, "harness.backbone": backbone or "none",
            "harness.role": getattr(method, "role", "method"),
            "harness.profile": cell.profile.name, **(extra_tags or {})}
    return {"task": task.name, "method": method.name, "row": row, "tags": tags}


# ----------------------------------------------------------------------------- running
class FinalDataLoader:
    """Called by the searcher when a cell's search is over: reads the final data (with the test
    split) for that cell — the first and only time the test split is read — and registers it."""

    def __init__(self, tasks: Mapping[str, Any], data_root: str, profile):
        self.tasks, self.data_root, self.profile = dict(tasks), data_root, profile

    def __call__(self, cell_key: str) -> None:
        from harness.trial.data import load_for_phase

        task = self.tasks[cell_key.split("/", 1)[0]]
        register(f"final:{cell_key}", load_for_phase(task, self.data_root, self.profile, "final"))


def run_cells(cells: Mapping[str, tuple], plans: list[CellPlan], search_data: Mapping[str, Any],
              *, name: str, storage_path: str, results_dir: str, meta: Mapping[str, dict],
              final_loader: Callable[[str], None] | None = None, max_concurrent: int = 1,
              max_failures: int = 0, workers: int = 1, cpus: float = 1.0, gpus: float = 0.0,
              tracker=None, sweep_run_id: str | None = None,
              progress: Callable[[dict], None] | None = None,
              restore_path: str | None = None) -> SweepCallback:
    """Run every cell's search and final runs in one Tune experiment; returns the callback, which
    holds every trial's record (rows are written as cells finish)."""
    from ray import tune

    for task_name, data in search_data.items():
        register(f"search:{task_name}", data)
    trainable, nested = make_trainable(cells, workers, cpus, gpus)
    searcher = CellSearcher(plans, nested=nested, on_search_done=final_loader)
    callback = SweepCallback(plans, meta, results_dir, tracker=tracker, sweep_run_id=sweep_run_id,
                             progress=progress)
    callback.searcher = searcher
    if restore_path is not None:
        # a resumed experiment: Tune restores the searcher (every cell's study), the scheduler,
        # finished trials and this callback as they were checkpointed; unfinished trials rerun
        tuner = tune.Tuner.restore(restore_path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
        tuner.fit()
        return _restored_callback(tuner, callback)
    tuner = tune.Tuner(
        trainable, param_space={},
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=CellScheduler(plans),
                                    num_samples=-1, max_concurrent_trials=max(1, max_concurrent),
                                    reuse_actors=not nested),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=0,
                                  callbacks=[callback],
                                  failure_config=tune.FailureConfig(max_failures=max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    tuner.fit()
    return callback


def _restored_callback(tuner, fallback: SweepCallback) -> SweepCallback:
    """The callback object a restored Tuner actually used (it was unpickled with the run config)."""
    try:
        for cb in tuner._local_tuner.get_run_config().callbacks or []:
            if isinstance(cb, SweepCallback):
                return cb
    except AttributeError:
        pass
    return fallback
