"""Optimal-transport solvers for the stage-1 losses (no losses here: see :mod:`recraft.losses`).

* :mod:`.cost` — ground-cost matrices;
* :mod:`.sinkhorn` — the torch entropic solver (:func:`sinkhorn_potentials`);
* :mod:`.pot` — POT's log-domain Sinkhorn with epsilon scaling;
* :mod:`.value` — OT values differentiable through the plan (:func:`ot_value`, :func:`entropic_ot`);
* :mod:`.batched` — many small problems at once, without gradient (OTDD's label distances).

Why our own Sinkhorn and not geomloss: ``benchmarks/p8_sinkhorn_geomloss.py`` compares them at
equal accuracy on the reference FA (see its result under ``benchmarks/results/``).

Exact OT (``"w1"`` with ``method="emd"``) is POT's network simplex (``ot.solve`` -> ``emd2``).
Every entropic problem goes through one of two solvers, picked by ``solver=`` on every function
(and through :class:`recraft.losses.FeatureAlignment`'s keyword arguments):

``solver="torch"`` (default, :func:`sinkhorn_potentials`)
    Log-domain Sinkhorn on the dual potentials ``(f, g)`` with ``torch.logsumexp``, on the
    cost's device (CPU or CUDA), in float64 (float32 was slower on CPU and stalls at marginal
    errors of 1e-4, see ``SOLVER_DTYPE``). Epsilon scaling (``eps_scaling=0.5``: ``TORCH_SCALING_ITERS = 1``
    iteration at each ``max(C) * 0.5^k`` above ``reg``), then up to ``num_iter_max`` (default
    1000) iterations at ``reg`` until the L1 marginal error of the plan is below ``stop_thr``
    (default ``TORCH_STOP_THR = 1e-6``; the error comes free with each update). The final stage
    is over-relaxed (SOR, factor estimated from the observed convergence rate): at ``eps = 0.1``
    on 1000 x 132 points in d = 128, plain Sinkhorn needs ~1500 iterations to 1e-6, this ~150.
    Self-terms ``OT(x, x)`` (two clouds with the same points, the symmetric OTDD costs) use the
    symmetric iteration ``f <- (f + T(f)) / 2`` on one potential: a few iterations where the
    two-sided iteration can need 1e4+. A "Sinkhorn did not converge" warning is emitted when
    ``stop_thr`` is not reached; :func:`record_sinkhorn` collects per-solve iteration counts.
    The entropic value is the dual objective at the final potentials (equal to the primal
    ``<pi, C> + eps KL`` at convergence, second order in the marginal error), differentiable in
    ``C`` with the potentials held fixed, so its gradient is the plan ``pi`` from those
    potentials.

``solver="pot"``
    POT's log-domain ``ot.bregman.sinkhorn_log`` on a float64 copy, with epsilon scaling
    (``SCALING_ITERS = 10`` warm-started POT iterations per scale), ``stop_thr`` default 1e-9 on
    POT's L2 column-marginal error (checked every 10 iterations), POT's own non-convergence
    warning, and the primal value ``<pi, C> (+ eps KL)`` at POT's plan held fixed. POT has no
    symmetric iteration: self-terms are solved as two-sided problems (slow to converge).

Common knobs: ``num_iter_max`` (final Sinkhorn stage, default 1000; exact OT default 1e6),
``stop_thr`` (``None``: the solver's default; note the two solvers measure the error
differently) and ``eps_scaling`` (in (0, 1), ``None`` disables; without it, clouds with
separated modes can need 1e5+ iterations at ``eps = 0.1``).

Gradients are envelope gradients: the plan is held fixed and ``d OT / d C = pi*`` (exact for exact
OT, and for the entropic objective at convergence), which costs no memory for unrolled iterations.
The float64 cast is differentiable, so gradients reach float32 features (returned values have the
input's dtype). :func:`recraft.losses.wasserstein_fa` also offers ``grad="autodiff"`` (``ot.sinkhorn2``
unrolled, always POT, as the paper presumably did).

Sources are treated as fixed data: pass them without ``requires_grad`` (the caches of
:class:`recraft.losses.FeatureAlignment` detach them).
"""
from .batched import batched_entropic_ot
from .cost import EXACT_COST_LIMIT, cost_matrix
from .pot import DEFAULT_STOP_THR
from .sinkhorn import (DEFAULT_SINKHORN_ITERS, EPS_SCALING, TORCH_STOP_THR, SinkhornStats,
                       record_sinkhorn, sinkhorn_potentials)
from .value import (DEFAULT_EMD_ITERS, DEFAULT_SOLVER, SOLVERS, check_solver_args, entropic_ot,
                    ot_value, same_points)

__all__ = ["DEFAULT_EMD_ITERS", "DEFAULT_SINKHORN_ITERS", "DEFAULT_SOLVER", "DEFAULT_STOP_THR",
           "EPS_SCALING", "EXACT_COST_LIMIT", "SOLVERS", "SinkhornStats", "TORCH_STOP_THR",
           "batched_entropic_ot", "check_solver_args", "cost_matrix", "entropic_ot", "ot_value",
           "record_sinkhorn", "same_points", "sinkhorn_potentials"]
