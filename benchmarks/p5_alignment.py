"""P5, alignment loss: time of FA's loss + gradient against the time of the cost matrix it needs.

For source clouds of 1000 and 5000 points x 132 target points, d = 128 and 768, it times, in
interleaved rounds (so machine load hits every variant alike):

* ``cost``: ``cost_matrix(source, target, p=1)`` forward (what every variant needs at least);
* ``w1_sinkhorn``: ``wasserstein_fa(..., method="sinkhorn")`` (paper eq. 14, POT log-domain
  Sinkhorn, eps-scaling, envelope gradient) forward + backward;
* ``w1_emd``: ``wasserstein_fa(..., method="emd")`` (exact OT, network simplex) forward + backward;
* ``sinkhorn_div``: ``FeatureAlignment("sinkhorn_div", source)`` (reference code) forward + backward,
  with the source-source term cached; that term (``entropic_ot(S, S)``) is timed once, separately:
  a one-time cost per run.

``--quick``: only the 1000-point sizes, one timed repeat, no solver warm-up (the solvers take
seconds to minutes per call on a 2-core CPU).

Figures: median seconds and the ratio (loss + gradient) / cost matrix. Goal: within 2x.

    python benchmarks/p5_alignment.py [--quick] [--device cuda]
"""
from __future__ import annotations

import warnings

import _common as C


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args()
    import torch

    from recraft.losses.alignment import (FeatureAlignment, cost_matrix, entropic_ot,
                                          wasserstein_fa)

    dev = torch.device(args.device)
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    sizes = [(1000, 128), (1000, 768)] if args.quick else [(1000, 128), (1000, 768), (5000, 128), (5000, 768)]
    repeats = args.repeats or (1 if args.quick else 3)
    m = 132
    rows, details, figures = [], {}, {}
    for n, d in sizes:
        g = torch.Generator().manual_seed(0)
        src = torch.randn(n, d, generator=g).to(dev)
        tgt0 = (torch.randn(m, d, generator=g) * 0.8 + 0.3).to(dev)
        key = f"n{n}_d{d}"
        # one-time source-source term of the Sinkhorn divergence (cached per run by FeatureAlignment)
        fa = FeatureAlignment("sinkhorn_div", src)
        with warnings.catch_warnings(record=True) as w_self:
            warnings.simplefilter("always")
            t0 = C.time.perf_counter()
            fa.source_terms()
            C.sync(args.device)
            self_s = C.time.perf_counter() - t0
        conv_warn = [str(w.message)[:120] for w in w_self]

        def run_cost():
            tgt = tgt0.clone().requires_grad_(True)
            c = cost_matrix(src, tgt, 1)
            C.sync(args.device)
            return c

        def run_cost_fb():
            tgt = tgt0.clone().requires_grad_(True)
            cost_matrix(src, tgt, 1).sum().backward()
            C.sync(args.device)

        def run_loss(kind):
            def f():
                tgt = tgt0.clone().requires_grad_(True)
                if kind == "w1_sinkhorn":
                    loss = wasserstein_fa(src, tgt, method="sinkhorn")
                elif kind == "w1_emd":
                    loss = wasserstein_fa(src, tgt, method="emd")
                else:
                    loss = fa(tgt)
                loss.backward()
                C.sync(args.device)
                return float(loss)
            return f

        ops = {"cost": run_cost, "cost_fwd_bwd": run_cost_fb, "w1_sinkhorn": run_loss("w1_sinkhorn"),
               "w1_emd": run_loss("w1_emd"), "sinkhorn_div": run_loss("sinkhorn_div")}
        for k, f in ops.items():        # warm-up (the OT solvers only in the full run: slow on CPU)
            if args.quick and k not in ("cost", "cost_fwd_bwd"):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f()
        times = {k: [] for k in ops}
        loop_warn = set()
        for _ in range(repeats):
            for k, f in ops.items():
                with warnings.catch_warnings(record=True) as ws:
                    warnings.simplefilter("always")
                    t0 = C.time.perf_counter()
                    f()
                    times[k].append(C.time.perf_counter() - t0)
                loop_warn |= {f"{k}: {str(w.message)[:100]}" for w in ws}
        med = {k: C.median(v) for k, v in times.items()}
        ratios = {k: med[k] / med["cost"] for k in ("w1_sinkhorn", "w1_emd", "sinkhorn_div")}
        details[key] = {"n": n, "m": m, "d": d, "seconds": times, "median": med,
                        "ratio_to_cost": ratios, "source_self_seconds": self_s,
                        "source_self_warnings": conv_warn, "solver_warnings": sorted(loop_warn),
                        "load": C.load()}
        figures[key] = {"ratio_w1_sinkhorn": ratios["w1_sinkhorn"], "ratio_w1_emd": ratios["w1_emd"],
                        "ratio_sinkhorn_div": ratios["sinkhorn_div"], "cost_ms": med["cost"] * 1e3,
                        "source_self_s": self_s}
        rows.append([n, d, med["cost"] * 1e3, med["cost_fwd_bwd"] * 1e3, med["w1_sinkhorn"] * 1e3,
                     ratios["w1_sinkhorn"], med["w1_emd"] * 1e3, ratios["w1_emd"],
                     med["sinkhorn_div"] * 1e3, ratios["sinkhorn_div"], self_s])
        print(f"{key}: cost {med['cost']*1e3:.2f} ms; w1_sinkhorn x{ratios['w1_sinkhorn']:.1f}, "
              f"emd x{ratios['w1_emd']:.1f}, sinkhorn_div x{ratios['sinkhorn_div']:.1f}; "
              f"S-S term {self_s:.2f} s  (load {C.load()['loadavg']})", flush=True)
    worst = max(max(f[k] for k in f if k.startswith("ratio")) for f in figures.values())
    figures["worst_ratio"] = worst
    figures["goal_within_2x"] = worst <= 2.0
    body = ("Median ms over interleaved repeats (loss = forward + backward to the target points); "
            "ratio = loss / cost-matrix forward.\n\n" + C.table(
                ["n src", "d", "cost ms", "cost f+b ms", "W1 sinkhorn ms", "ratio", "W1 EMD ms",
                 "ratio", "sinkhorn div ms", "ratio", "S-S term s (once)"], rows))
    C.write(args, "p5-alignment", figures, details, body, load0,
            notes=[f"{repeats} repeats, target m = {m}; random Gaussian clouds (target shifted).",
                   "Solver warnings (non-convergence) are listed per size in the JSON."])


if __name__ == "__main__":
    main()
