"""The method contract: one file, one class, a name, a version, stages, a search space.

A method is an ordered tuple of :class:`Stage` s. Each stage declares the hyperparameters it
consumes (stage-qualified names such as ``"align.epsilon"``), so the harness can cache one stage's
output for every trial that shares those values. The search space is written with the specs of
:mod:`harness.methods.space`; the paper's defaults are always the first trial; ``test_config`` is a
tiny configuration for smoke tests. ``supports`` and ``resources`` are optional hooks with defaults.

Stages are methods named ``stage_<name>(ctx, config, upstream) -> dict``: ``config`` is the full
resolved configuration, ``upstream`` the merged outputs of the earlier stages, and the returned
dict is passed on. The final stage returns at least ``{"metrics": {...}}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from harness.methods.space import Param, check_in_space, searched

if TYPE_CHECKING:
    from harness.profiles import Profile
    from harness.suites.base import Task


@dataclass(frozen=True)
class Stage:
    """One step of a method, with the stage-qualified hyperparameters it reads."""

    name: str
    consumes: tuple[str, ...] = ()
    #: the stage's output is cached by a content key of the parameters it consumes (and the
    #: seed), so search trials that agree on those parameters share one run of it; the searcher
    #: then draws ``Profile.stage_reuse`` trials per configuration of these parameters
    cached: bool = False


@dataclass(frozen=True)
class Resources:
    """What one trial of the method asks for (mapped to Ray resources by the sweep)."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1


class Method:
    """Base class of every compared method. Subclass it once per file in ``baselines/``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    variant_of: ClassVar[str | None] = None
    #: "method" (ranked on the leaderboard) or "floor" (a reference predictor shown beside them)
    role: ClassVar[str] = "method"
    #: whether the method runs the profile's pretrained body (rows of one that does not record none)
    uses_body: ClassVar[bool] = True
    #: how ``ctx.fit`` trains this method's model, over the task's values (``FitSettings`` fields,
    #: e.g. ``{"optimizer": "adam", "grad_clip": None}``; not the budget: epochs and batch size are
    #: the profile's). A method with ``uses_body = False`` starts from
    #: ``harness.trial.fit.SCRATCH_DEFAULTS`` instead of the transformer's optimizer and clipping
    fit_defaults: ClassVar[Mapping[str, Any]] = {}
    #: whether a sweep without ``--methods`` runs it; a method whose cells cost much more than the
    #: default run's budget allows (the from-scratch specialists on a CPU) runs only when named
    in_default_sweep: ClassVar[bool] = True
    stages: ClassVar[tuple[Stage, ...]] = ()
    resources: ClassVar[Resources] = Resources()

    # ---- declared by every method
    def search_space(self, task: "Task") -> dict[str, Param]:
        """Stage-qualified name -> spec. May depend on the task (e.g. lr around its paper value)."""
        raise NotImplementedError

    def defaults(self, task: "Task") -> dict[str, Any]:
        """The paper's configuration for ``task``; always the first trial of a search."""
        raise NotImplementedError

    def test_config(self, task: "Task") -> dict[str, Any]:
        """A tiny configuration that runs in seconds on a CPU (defaults overridden)."""
        return self.defaults(task)

    # ---- optional hooks
    def supports(self, task: "Task") -> tuple[bool, str]:
        """Whether the method can run ``task``; a ``False`` shows as a skipped cell, not an error."""
        return True, ""

    # ---- provided
    def check_config(self, task: "Task", config: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming every key that is missing, unknown or out of range."""
        problems = check_in_space(config, self.search_space(task))
        if problems:
            raise ValueError(f"config for method {self.name!r} on task {task.name!r}: "
                             + "; ".join(problems))

    def stage_callable(self, stage: Stage):
        fn = getattr(self, f"stage_{stage.name}", None)
        if fn is None:
            raise TypeError(f"method {self.name!r} declares stage {stage.name!r} but has no "
                            f"method stage_{stage.name}(ctx, config, upstream)")
        return fn

    def contract_problems(self) -> list[str]:
        """What is wrong with the class itself (missing name/version/stages, stage without code)."""
        problems = []
        if not self.name:
            problems.append("no `name`")
        if not self.version:
            problems.append("no `version`")
        if not self.stages:
            problems.append("no `stages`")
        for st in self.stages:
            if getattr(self, f"stage_{st.name}", None) is None:
                problems.append(f"stage {st.name!r} has no method stage_{st.name}")
        return problems

    def consumed(self) -> set[str]:
        return {p for st in self.stages for p in st.consumes}

    def shared_stage_params(self, task: "Task") -> tuple[str, ...]:
        """Searched parameters of the cached stages: trials that agree on them share that work."""
        space = searched(self.search_space(task))
        return tuple(sorted({p for st in self.stages if st.cached for p in st.consumes
                             if p in space}))

    def __repr__(self) -> str:
        return f"<method {self.name} v{self.version}>"


def recorded_backbone(profile: "Profile", method: Method, task: "Task") -> str | None:
    """The pretrained body a (task, method) cell loads and its rows record: the profile's body for
    the task's modality, or None for a method that declares ``uses_body = False`` (a floor, a
    specialist trained from scratch). The results rows, the MLflow tags and the sweep's body
    preflight all use this one rule."""
    return profile.backbone(task.modality) if getattr(method, "uses_body", True) else None


@dataclass
class StageRecord:
    """What running one stage produced (for logs, caching and the cost column)."""

    stage: str
    seconds: float
    outputs: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
