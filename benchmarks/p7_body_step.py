"""Step time of real-size bodies, random-initialised, at the paper's batch size (4).

* 1D: a RoBERTa-base-sized encoder (roberta-base's config: 12 layers, hidden
  768, 12 heads, ~125 M parameters) on input embeddings of ``--seq-len`` tokens (default 512, the
  advection task's target length), mean-pooled into a 1-output regression head;
* 2D: a Swin-base-sized body (``timm`` ``swin_base_patch4_window7_224``, ``pretrained=False``,
  ~87 M parameters) on 224x224 images.

One step = forward + MSE loss + backward + AdamW step. Warm-up steps are not timed; the figure is
the median step time (and mixed precision with ``--amp`` on CUDA, bf16).

    python benchmarks/p7_body_step.py [--quick] [--device cuda] [--amp]
"""
from __future__ import annotations

import _common as C


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--amp", action="store_true")
    args = p.parse_args()
    import contextlib

    import timm
    import torch
    from torch import nn
    from transformers import RobertaConfig, RobertaModel

    dev = torch.device(args.device)
    steps = args.steps or (2 if args.quick else 10)
    warm = 1 if args.quick else 3
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    torch.manual_seed(0)

    class Body1D(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = RobertaModel(RobertaConfig(vocab_size=50265, max_position_embeddings=514,
                                                  type_vocab_size=1, pad_token_id=1),
                                     add_pooling_layer=False)   # roberta-base config.json
            self.head = nn.Linear(768, 1)

        def forward(self, emb):
            # explicit token types: transformers' buffered ones are only 512 long, while RoBERTa's
            # position ids for 512 tokens run to 513 (padding offset)
            tt = torch.zeros(emb.shape[:2], dtype=torch.long, device=emb.device)
            return self.head(self.enc(inputs_embeds=emb, token_type_ids=tt).last_hidden_state.mean(1))

    class Body2D(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = timm.create_model("swin_base_patch4_window7_224", pretrained=False,
                                         num_classes=0)
            self.head = nn.Linear(self.enc.num_features, 1)

        def forward(self, x):
            return self.head(self.enc(x))

    cases = {"roberta-base-sized (1D)": (Body1D, (args.batch, args.seq_len, 768)),
             "swin-base-sized (2D)": (Body2D, (args.batch, 3, 224, 224))}
    figures, rows = {}, []
    for name, (cls, shape) in cases.items():
        model = cls().to(dev)
        n_params = sum(q.numel() for q in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(*shape, device=dev)
        y = torch.randn(args.batch, 1, device=dev)
        amp = (torch.autocast("cuda", dtype=torch.bfloat16) if args.amp and dev.type == "cuda"
               else contextlib.nullcontext())
        times = []
        for i in range(warm + steps):
            C.sync(args.device)
            t0 = C.time.perf_counter()
            with amp:
                loss = nn.functional.mse_loss(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            C.sync(args.device)
            if i >= warm:
                times.append(C.time.perf_counter() - t0)
        mem = (torch.cuda.max_memory_allocated() / 2**30) if dev.type == "cuda" else None
        med = C.median(times)
        figures[name] = {"params_m": n_params / 1e6, "step_s_median": med, "steps": times,
                         "batch": args.batch, "input": list(shape), "max_mem_gb": mem,
                         "amp": bool(args.amp), "load": C.load()["loadavg"]}
        rows.append([name, n_params / 1e6, str(list(shape)), med, 1.0 / med,
                     mem if mem is not None else "-"])
        print(f"{name}: {n_params/1e6:.1f} M params, step {med:.3f} s (load {C.load()['loadavg']})",
              flush=True)
        del model, opt
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    body = C.table(["body", "params (M)", "input", "step s (median)", "steps/s", "max mem GB"], rows)
    C.write(args, "p7-body-step", figures, {}, body, load0,
            notes=[f"{warm} warm-up + {steps} timed steps; forward + MSE + backward + AdamW; "
                   f"random init; amp={args.amp}."])


if __name__ == "__main__":
    main()
