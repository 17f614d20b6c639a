"""P5, alignment loss: time of FA's loss + gradient against the time of the cost matrix it needs.

For source clouds of 1000 and 5000 points x 132 target points, d = 128 and 768, it times, in
interleaved rounds (so machine load hits every variant alike):

* ``cost``: ``cost_matrix(source, target, p=1)`` forward (what every variant needs at least);
* ``w1_sinkhorn``: ``wasserstein_fa(..., method="sinkhorn")`` (paper eq. 14, entropic plan with
  eps-scaling, envelope gradient) forward + backward, once per entropic solver: ``torch`` (the
  default, :func:`recraft.ot.sinkhorn_potentials`) and ``pot`` (POT's log-domain
  ``sinkhorn_log``);
* ``w1_emd``: ``wasserstein_fa(..., method="emd")`` (exact OT, POT network simplex) forward +
  backward;
* ``sinkhorn_div``: ``FeatureAlignment("sinkhorn_div", source, solver=...)`` (reference code)
  forward + backward for both solvers, with the source-source term cached; that term
  (``entropic_ot(S, S)``) is timed once per solver, separately: a one-time cost per run.

Each solver runs at its own default stopping rule (torch: L1 marginal error 1e-6, up to 1000
final iterations; POT: L2 column error 1e-9, up to 1000 final iterations), as the losses do by
default. Iteration counts of the torch solver (epsilon-scaling steps + final-stage iterations,
the final over-relaxation factor) come from :func:`record_sinkhorn`; POT does not report them.

``--quick``: only the 1000-point sizes, one timed repeat, no solver warm-up (the POT solver takes
seconds per call on a 2-core CPU).

Figures: median seconds, the ratio (loss + gradient) / cost matrix per solver, and the speed-up
torch over POT. Goal: within 2x of the cost matrix.

    python benchmarks/p5_alignment.py [--quick] [--device cuda] [--out DIR]
"""
from __future__ import annotations

import warnings

import _common as C

SOLVER_NAMES = ("torch", "pot")
LOSSES = ("w1_sinkhorn", "sinkhorn_div")


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args()
    import torch

    from recraft.losses import FeatureAlignment, wasserstein_fa
    from recraft.ot import cost_matrix, record_sinkhorn

    dev = torch.device(args.device)
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    sizes = [(1000, 128), (1000, 768)] if args.quick else [(1000, 128), (1000, 768), (5000, 128), (5000, 768)]
    repeats = args.repeats or (1 if args.quick else 3)
    m = 132
    rows, iter_rows, details, figures = [], [], {}, {}
    for n, d in sizes:
        g = torch.Generator().manual_seed(0)
        src = torch.randn(n, d, generator=g).to(dev)
        tgt0 = (torch.randn(m, d, generator=g) * 0.8 + 0.3).to(dev)
        key = f"n{n}_d{d}"
        # one-time source-source term of the Sinkhorn divergence (cached per run by FeatureAlignment)
        fas, self_s, self_warn, self_iters = {}, {}, {}, {}
        for solver in SOLVER_NAMES:
            fas[solver] = FeatureAlignment("sinkhorn_div", src, solver=solver)
            with warnings.catch_warnings(record=True) as ws, record_sinkhorn() as stats:
                warnings.simplefilter("always")
                t0 = C.time.perf_counter()
                fas[solver].source_terms()
                C.sync(args.device)
                self_s[solver] = C.time.perf_counter() - t0
            self_warn[solver] = [str(w.message)[:120] for w in ws]
            self_iters[solver] = [_stat(s) for s in stats]

        def run_cost():
            tgt = tgt0.clone().requires_grad_(True)
            c = cost_matrix(src, tgt, 1)
            C.sync(args.device)
            return c

        def run_cost_fb():
            tgt = tgt0.clone().requires_grad_(True)
            cost_matrix(src, tgt, 1).sum().backward()
            C.sync(args.device)

        def run_loss(kind, solver=None):
            def f():
                tgt = tgt0.clone().requires_grad_(True)
                if kind == "w1_sinkhorn":
                    loss = wasserstein_fa(src, tgt, method="sinkhorn", solver=solver)
                elif kind == "w1_emd":
                    loss = wasserstein_fa(src, tgt, method="emd")
                else:
                    loss = fas[solver](tgt)
                loss.backward()
                C.sync(args.device)
                return float(loss)
            return f

        ops = {"cost": run_cost, "cost_fwd_bwd": run_cost_fb, "w1_emd": run_loss("w1_emd")}
        for kind in LOSSES:
            for solver in SOLVER_NAMES:
                ops[f"{kind}.{solver}"] = run_loss(kind, solver)
        for k, f in ops.items():        # warm-up (the OT solvers only in the full run: slow on CPU)
            if args.quick and k not in ("cost", "cost_fwd_bwd"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f()
        times = {k: [] for k in ops}
        values: dict[str, float] = {}
        iters: dict[str, list] = {}
        loop_warn = set()
        for _ in range(repeats):
            for k, f in ops.items():
                with warnings.catch_warnings(record=True) as ws, record_sinkhorn() as stats:
                    warnings.simplefilter("always")
                    t0 = C.time.perf_counter()
                    out = f()
                    times[k].append(C.time.perf_counter() - t0)
                loop_warn |= {f"{k}: {str(w.message)[:100]}" for w in ws}
                if isinstance(out, float):
                    values[k] = out
                if stats:
                    iters[k] = [_stat(s) for s in stats]   # per solve of the last repeat
        med = {k: C.median(v) for k, v in times.items()}
        ratios = {k: med[k] / med["cost"] for k in ops if k not in ("cost", "cost_fwd_bwd")}
        speedup = {kind: med[f"{kind}.pot"] / med[f"{kind}.torch"] for kind in LOSSES}
        value_gap = {kind: abs(values[f"{kind}.torch"] - values[f"{kind}.pot"])
                     / max(abs(values[f"{kind}.pot"]), 1e-300) for kind in LOSSES}
        details[key] = {"n": n, "m": m, "d": d, "seconds": times, "median": med,
                        "ratio_to_cost": ratios, "speedup_torch_over_pot": speedup,
                        "values": values, "relative_value_gap_torch_vs_pot": value_gap,
                        "torch_iterations": iters, "source_self_seconds": self_s,
                        "source_self_torch_iterations": self_iters["torch"],
                        "source_self_warnings": self_warn, "solver_warnings": sorted(loop_warn),
                        "load": C.load()}
        figures[key] = {**{f"ratio_{k}": v for k, v in ratios.items()},
                        **{f"speedup_{k}": v for k, v in speedup.items()},
                        "cost_ms": med["cost"] * 1e3,
                        **{f"source_self_s.{s}": v for s, v in self_s.items()}}
        rows.append([n, d, med["cost"] * 1e3, med["cost_fwd_bwd"] * 1e3, med["w1_emd"] * 1e3,
                     ratios["w1_emd"]]
                    + [x for kind in LOSSES
                       for x in (med[f"{kind}.torch"] * 1e3, ratios[f"{kind}.torch"],
                                 med[f"{kind}.pot"] * 1e3, ratios[f"{kind}.pot"], speedup[kind])]
                    + [self_s["torch"], self_s["pot"]])
        iter_rows.append([n, d] + [_iter_text(iters.get(f"{kind}.torch", [])) for kind in LOSSES]
                         + [_iter_text(self_iters["torch"])])
        print(f"{key}: cost {med['cost']*1e3:.2f} ms; "
              + "; ".join(f"{kind} torch {med[f'{kind}.torch']*1e3:.1f} ms (x{ratios[f'{kind}.torch']:.0f}) "
                          f"pot {med[f'{kind}.pot']*1e3:.1f} ms (x{ratios[f'{kind}.pot']:.0f}) "
                          f"speed-up {speedup[kind]:.1f}" for kind in LOSSES)
              + f"; emd x{ratios['w1_emd']:.0f}; S-S term torch {self_s['torch']:.2f} s, "
              f"pot {self_s['pot']:.2f} s  (load {C.load()['loadavg']})", flush=True)
        print("  torch iterations (scales+final, omega): "
              + "; ".join(f"{kind} {_iter_text(iters.get(f'{kind}.torch', []))}" for kind in LOSSES),
              flush=True)
    sizes_keys = [k for k in figures]
    figures["worst_ratio"] = max(max(v for k, v in figures[s].items()
                                     if k.startswith("ratio_") and not k.endswith(".pot"))
                                 for s in sizes_keys)
    figures["worst_ratio_pot"] = max(max(v for k, v in figures[s].items()
                                         if k.startswith("ratio_") and k.endswith(".pot"))
                                     for s in sizes_keys)
    figures["goal_within_2x"] = figures["worst_ratio"] <= 2.0
    head = ["n src", "d", "cost ms", "cost f+b ms", "W1 EMD ms", "ratio"]
    for label in ("W1 sinkhorn", "sinkhorn div"):
        head += [f"{label} torch ms", "ratio", f"{label} POT ms", "ratio", "speed-up"]
    head += ["S-S term torch s (once)", "S-S term POT s (once)"]
    body = ("Median ms over interleaved repeats (loss = forward + backward to the target points); "
            "ratio = loss / cost-matrix forward; speed-up = POT / torch.\n\n" + C.table(head, rows)
            + "\n\nTorch solver iterations per solve of the last repeat (epsilon-scaling steps + "
              "final-stage iterations, final over-relaxation factor; sym = symmetric self-term):\n\n"
            + C.table(["n src", "d", "W1 sinkhorn", "sinkhorn div (cross; target self)",
                       "S-S term"], iter_rows))
    C.write(args, "p5-alignment", figures, details, body, load0,
            notes=[f"{repeats} repeats, target m = {m}; random Gaussian clouds (target shifted).",
                   ("Each solver at its default stopping rule (torch: L1 marginal error 1e-6; "
                    "POT: L2 column error 1e-9, which it often misses within 1000 iterations)."),
                   "Solver warnings (non-convergence) and torch-vs-POT value gaps are in the JSON."])


def _stat(s) -> dict:
    return {"shape": list(s.shape), "symmetric": s.symmetric, "scales": s.scales,
            "iterations": s.iterations, "omega": round(s.omega, 3), "error": s.error,
            "converged": s.converged}


def _iter_text(stats: list[dict]) -> str:
    parts = []
    for s in stats:
        text = f"{s['scales']}+{s['iterations']}"
        if s["symmetric"]:
            text += " sym"
        if s["omega"] != 1:
            text += f" w={s['omega']:.2f}"
        if not s["converged"]:
            text += " (not converged)"
        parts.append(text)
    return "; ".join(parts) or "-"


if __name__ == "__main__":
    main()
