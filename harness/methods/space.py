"""Library-neutral hyperparameter specs and their translation to Optuna and Ray Tune.

A method declares its search space as ``{"stage.param": spec}`` with the specs below; it never
imports a search library. The adapters at the bottom are the only place that does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


class Param:
    """Base of the specs. ``contains`` says whether a value lies in the spec; ``size`` counts
    distinct values (``math.inf`` for a continuous range).

    ``role`` (optional, on searched specs) names what the parameter is for across methods, e.g.
    :data:`MAIN_LR` for the learning rate that trains the method's final model, whatever its key:
    the sweep's common-random-numbers sampler pairs draws by role (``harness.sampler``).
    """

    role: str | None = None

    def contains(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def size(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class LogFloat(Param):
    """A float drawn log-uniformly from ``[low, high]``."""

    low: float
    high: float
    role: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not (0 < self.low < self.high):
            raise ValueError(f"LogFloat needs 0 < low < high, got [{self.low}, {self.high}]")

    def contains(self, value):
        return isinstance(value, (int, float)) and self.low * (1 - 1e-9) <= value <= self.high * (1 + 1e-9)

    size = math.inf

    def describe(self):
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Float(Param):
    """A float drawn uniformly from ``[low, high]``."""

    low: float
    high: float
    role: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(f"Float needs low < high, got [{self.low}, {self.high}]")

    def contains(self, value):
        return isinstance(value, (int, float)) and self.low - 1e-12 <= value <= self.high + 1e-12

    size = math.inf

    def describe(self):
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntRange(Param):
    """An integer in ``low..high`` inclusive, on a grid of ``step``."""

    low: int
    high: int
    step: int = 1
    role: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.low > self.high or self.step < 1:
            raise ValueError(f"IntRange needs low <= high and step >= 1, got {self}")

    def contains(self, value):
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.low <= value <= self.high and (value - self.low) % self.step == 0)

    @property
    def size(self):
        return (self.high - self.low) // self.step + 1

    def describe(self):
        return f"int {self.low}..{self.high}" + (f" step {self.step}" if self.step > 1 else "")


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed tuple of options (strings, numbers or booleans)."""

    options: tuple
    role: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if not self.options:
            raise ValueError("Choice needs at least one option")

    def contains(self, value):
        return value in self.options

    @property
    def size(self):
        return len(self.options)

    def describe(self):
        return "one of " + ", ".join(map(repr, self.options))


@dataclass(frozen=True)
class Fixed(Param):
    """A constant: part of the configuration, not searched."""

    value: Any

    def contains(self, value):
        return value == self.value

    size = 1

    def describe(self):
        return f"fixed {self.value!r}"


#: the role of the learning rate that trains a method's final model (e.g. ``finetune.lr``)
MAIN_LR = "main_lr"


def roles(space: Mapping[str, Param]) -> dict[str, str]:
    """Parameter key -> role, for the searched parameters that declare one."""
    return {k: p.role for k, p in searched(space).items() if getattr(p, "role", None)}


def space_size(space: Mapping[str, Param]) -> float:
    """Number of distinct configurations (``inf`` when any parameter is continuous)."""
    total = 1.0
    for p in space.values():
        total *= p.size
    return total


def searched(space: Mapping[str, Param]) -> dict[str, Param]:
    """The parameters a searcher actually samples (everything except :class:`Fixed`)."""
    return {k: p for k, p in space.items() if not isinstance(p, Fixed)}


def check_in_space(config: Mapping[str, Any], space: Mapping[str, Param]) -> list[str]:
    """Problems with ``config`` against ``space``: missing keys, unknown keys, out-of-range values."""
    problems = [f"missing {k!r}" for k in space if k not in config]
    problems += [f"unknown {k!r}" for k in config if k not in space]
    problems += [f"{k}={config[k]!r} outside {p.describe()}" for k, p in space.items()
                 if k in config and not p.contains(config[k])]
    return problems


# ------------------------------------------------------------------ adapters
def to_optuna(space: Mapping[str, Param]) -> dict[str, Any]:
    """Optuna distributions for the searched parameters (Fixed ones are left out)."""
    import optuna.distributions as od

    out: dict[str, Any] = {}
    for k, p in searched(space).items():
        if isinstance(p, LogFloat):
            out[k] = od.FloatDistribution(p.low, p.high, log=True)
        elif isinstance(p, Float):
            out[k] = od.FloatDistribution(p.low, p.high)
        elif isinstance(p, IntRange):
            out[k] = od.IntDistribution(p.low, p.high, step=p.step)
        elif isinstance(p, Choice):
            out[k] = od.CategoricalDistribution(list(p.options))
        else:
            raise TypeError(f"{k}: no Optuna translation for {type(p).__name__}")
    return out


def to_tune(space: Mapping[str, Param]) -> dict[str, Any]:
    """A Ray Tune ``param_space``: domains for searched parameters, constants for Fixed ones."""
    from ray import tune

    out: dict[str, Any] = {}
    for k, p in space.items():
        if isinstance(p, LogFloat):
            out[k] = tune.loguniform(p.low, p.high)
        elif isinstance(p, Float):
            out[k] = tune.uniform(p.low, p.high)
        elif isinstance(p, IntRange):
            if p.step == 1:
                out[k] = tune.randint(p.low, p.high + 1)        # randint's upper bound is exclusive
            elif p.low % p.step == 0:
                out[k] = tune.qrandint(p.low, p.high, p.step)   # inclusive, on multiples of step
            else:
                # qrandint's grid is anchored at 0, not at low: list the grid explicitly
                out[k] = tune.choice(list(range(p.low, p.high + 1, p.step)))
        elif isinstance(p, Choice):
            out[k] = tune.choice(list(p.options))
        elif isinstance(p, Fixed):
            out[k] = p.value
        else:
            raise TypeError(f"{k}: no Ray Tune translation for {type(p).__name__}")
    return out
