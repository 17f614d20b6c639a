"""Optuna samplers with common random numbers across the cells of a sweep.

A sweep compares methods that share hyperparameters (every method has ``finetune.lr``). With a
plain seeded sampler, each cell's random draws depend on how many other parameters the method
samples first, so trial 3 of NFT and trial 3 of RECRAFT try different fine-tuning learning rates,
and with a small budget the ranking reflects those draws more than the methods. Here a random
draw of parameter ``p`` in trial ``i`` depends only on ``(seed, p, i)``: every method whose space
has ``p`` with the same range tries the same value of it in trial ``i`` (common random numbers),
and a method's other parameters do not shift it. TPE's model-based phase (after its start-up
trials) is unchanged.

Draws pair by *role*, not only by key: a parameter whose spec declares a role
(``harness.methods.space.Param.role``, e.g. ``MAIN_LR`` on ``finetune.lr`` and on a specialist
model's own ``train.lr``) draws the uniform number of ``(seed, role, i)``, so the main learning
rates of all methods share their draws even under different names. Where the ranges differ, the
shared draw lands on the same quantile of each method's range (log scale for log ranges), e.g. both
try "their paper value × 3" in the same trial. A parameter without a role pairs by its key.
"""
from __future__ import annotations

import math
import zlib
from typing import Any, Mapping

import numpy as np
import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)


def common_uniform(seed: int, name: str, number: int) -> float:
    """A uniform number in [0, 1) determined by (seed, parameter name, trial number) alone."""
    key = zlib.crc32(f"{seed}\x00{name}\x00{number}".encode())
    return float(np.random.default_rng(key).random())


def value_from_uniform(dist: BaseDistribution, u: float) -> Any:
    """Map ``u`` in [0, 1) onto an Optuna distribution (log scale and steps honoured)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        low, high = dist.low, dist.high
        if dist.log:
            x = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            x = low + u * (high - low)
        step = dist.step
        if isinstance(dist, IntDistribution):
            step = step or 1
            if dist.log:
                return int(min(max(round(x), low), high))
            n = (high - low) // step
            return int(low + min(int(u * (n + 1)), n) * step)
        if step is not None:
            n = round((high - low) / step)
            return float(low + min(int(u * (n + 1)), n) * step)
        return float(min(max(x, low), high))
    raise TypeError(f"no common-random draw for distribution {type(dist).__name__}")


class CommonRandomSampler(optuna.samplers.RandomSampler):
    """Random search whose draw for (parameter, trial number) is the same in every study."""

    def __init__(self, seed: int = 0, roles: Mapping[str, str] | None = None):
        super().__init__(seed=seed)
        self.common_seed = int(seed)
        self.roles = dict(roles or {})

    def sample_independent(self, study, trial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if isinstance(param_distribution, (FloatDistribution, IntDistribution)) and \
                param_distribution.low == param_distribution.high:
            return param_distribution.low
        key = f"role:{self.roles[param_name]}" if param_name in self.roles else param_name
        return value_from_uniform(param_distribution,
                                  common_uniform(self.common_seed, key, trial.number))


def common_random_tpe(seed: int = 0, roles: Mapping[str, str] | None = None,
                      **tpe_kwargs: Any) -> optuna.samplers.TPESampler:
    """Optuna's TPE whose start-up (random) trials use :class:`CommonRandomSampler`; ``roles``
    maps parameter keys to their roles (:func:`harness.methods.space.roles`)."""
    sampler = optuna.samplers.TPESampler(seed=seed, **tpe_kwargs)
    sampler._random_sampler = CommonRandomSampler(seed, roles)   # start-up and fallback draws
    return sampler
