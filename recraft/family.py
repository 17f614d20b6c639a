"""The shared implementation behind RECRAFT, its ablations, ORCA and NFT as method plugins.

Each method is a subclass that sets class-level switches (which FA loss, which FLD direction,
joint or sequential, recalibration mode, embedder init) and points at its search-space module.
Stage ``align`` runs stage 1 (cached by content key when the harness gives a cache folder);
stage ``finetune`` runs stage 2 and reports the validation metric every epoch.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar

import torch

from harness.methods.contract import Method, Stage
from recraft.pipeline import AlignSettings, FinetuneSettings, finetune, run_alignment

ALIGN_KEYS = ("align.epsilon", "align.fa_steps", "align.fld_epochs", "align.lr")
FINETUNE_KEYS = ("finetune.lr", "finetune.weight_decay")


class FineTuningMethod(Method):
    """Base for every method here: switches + a search-space module + the two stages."""

    space_module: ClassVar[str] = ""
    # stage-1 switches (see recraft.pipeline.AlignSettings)
    fa_loss: ClassVar[str] = "none"
    fld: ClassVar[str] = "none"
    combine: ClassVar[str] = "joint"
    recal: ClassVar[str] = "paper"            # paper | reference | none
    embedder_init: ClassVar[str] = "recraft"  # recraft | orca
    train_source_head: ClassVar[bool] = False
    token_mode: ClassVar[str] = "draws"
    reference_schedule: ClassVar[bool] = False

    stages = (Stage("align", ALIGN_KEYS, cached=True), Stage("finetune", FINETUNE_KEYS))

    # ---- contract
    def _space_mod(self):
        return importlib.import_module(self.space_module)

    def search_space(self, task):
        return self._space_mod().space(task)

    def defaults(self, task):
        return self._space_mod().defaults(task)

    def test_config(self, task):
        cfg = dict(self.defaults(task))
        if "align.fa_steps" in cfg:
            cfg["align.fa_steps"] = 20
        if "align.fld_epochs" in cfg:
            cfg["align.fld_epochs"] = 1
        return cfg

    def supports(self, task):
        return True, ""

    @property
    def aligns(self) -> bool:
        return any(s.name == "align" for s in self.stages)

    # ---- helpers
    def _backbone(self, ctx) -> str:
        return ctx.profile.backbone(ctx.task.modality)

    def _source_side(self, ctx, epsilon: float | None):
        from recraft.cache import ArtifactCache
        from recraft.source import build_source_side

        prof, task = ctx.profile, ctx.task
        cache = ArtifactCache(ctx.cache_dir / "source") if ctx.cache_dir else None
        proxy = prof.proxy_1d if task.modality == "1d" else prof.proxy_2d
        mode = self.recal
        eps = epsilon if mode == "paper" else None
        head_epochs = prof.source_head_epochs
        return build_source_side(self._backbone(ctx), proxy=proxy, n_samples=prof.source_samples,
                                 epsilon=eps, mode=mode, seed=0, cache=cache,
                                 head_epochs=head_epochs, recal_epochs=head_epochs,
                                 batch_size=16, device=ctx.device)

    def _model(self, ctx, align: bool):
        from recraft.model import build_target_model, standardization_stats

        x, y = ctx.data.split("train")
        prof = ctx.profile
        # the same initial weights whether or not stage 1 came from the cache
        torch.manual_seed(ctx.seed)
        model = build_target_model(self._backbone(ctx), x.shape[1:], y.shape[1:],
                                   target_seq_len=prof.target_seq_len(ctx.task.defaults.target_seq_len),
                                   embedder_init=self.embedder_init, align=align, dropout=0.0,
                                   dense_head_1d=prof.dense_head_1d,
                                   embedder_bias=prof.embedder_bias if ctx.task.modality == "1d" else 0.0)
        if prof.standardize:
            model.set_standardization(standardization_stats(x, y))
        return model

    def align_settings(self, ctx, config) -> AlignSettings:
        prof, task = ctx.profile, ctx.task
        return AlignSettings(
            fa_loss=self.fa_loss, fld=self.fld, combine=self.combine,
            epsilon=float(config.get("align.epsilon", task.defaults.epsilon)),
            fa_steps=prof.fa_steps(int(config.get("align.fa_steps", 0))) if self.fa_loss != "none" else 0,
            fld_epochs=prof.fld_epochs(int(config.get("align.fld_epochs", 0))) if self.fld != "none" else 0,
            lr=float(config["align.lr"]),
            n_classes=task.defaults.n_label_classes, train_source_head=self.train_source_head,
            token_mode=self.token_mode, reference_schedule=self.reference_schedule,
            schedule_scale=prof.fa_scale, target_loss=task.defaults.train_loss)

    # ---- stages
    def stage_align(self, ctx, config, upstream):
        from recraft.cache import ArtifactCache, content_key

        settings = self.align_settings(ctx, config)
        x, y = ctx.data.split("train")
        consumed = {k: config[k] for k in ALIGN_KEYS if k in config}
        key = content_key(stage="align", task=ctx.task.name, task_version=ctx.task.version,
                          method=self.name, method_version=self.version, consumed=consumed,
                          settings=settings.__dict__, seed=ctx.seed, profile=ctx.profile.name,
                          backbone=self._backbone(ctx), n_train=len(x), data=ctx.data.source)

        def build() -> dict[str, Any]:
            source = self._source_side(ctx, settings.epsilon) if settings.active else None
            model = self._model(ctx, align=True)
            if source is None:
                state = {k: v.detach().clone() for k, v in model.embedder.state_dict().items()}
                return {"embedder_state": state, "log": [], "source": {}}
            res = run_alignment(model, source, x, y, settings, ctx.task.defaults.optimizer,
                                ctx.task.defaults.weight_decay, ctx.seed, ctx.device,
                                check=ctx.check_finite)
            return {"embedder_state": res.embedder_state, "log": res.log,
                    "source": {"proxy": source.proxy_name, "epsilon": source.epsilon,
                               "accuracy_after": source.accuracy_after,
                               "max_grad_norm_after": source.max_grad_norm_after}}

        if ctx.cache_dir is not None:
            cache = ArtifactCache(ctx.cache_dir / "stage1")
            payload = cache.get_or_create(key, build, kind="torch")
            ctx.cache_events.append(("stage1", "hit" if cache.hits else "miss"))
        else:
            payload = build()
        summary = {}
        for row in payload["log"]:
            summary.update({f"align.{k}": v for k, v in row.items() if k != "step"})
        summary.update({f"source.{k}": v for k, v in payload["source"].items()
                        if isinstance(v, (int, float))})
        return {"embedder_state": payload["embedder_state"], "align_summary": summary,
                "align_log": payload["log"]}

    def stage_finetune(self, ctx, config, upstream):
        task, prof = ctx.task, ctx.profile
        model = self._model(ctx, align=self.aligns)
        if "embedder_state" in upstream:
            model.embedder.load_state_dict(upstream["embedder_state"])
        d = task.defaults
        settings = FinetuneSettings(
            optimizer=prof.finetune_optimizer or d.optimizer,
            lr=float(config["finetune.lr"]) * prof.lr_factor(d.lr),
            weight_decay=float(config["finetune.weight_decay"]), epochs=prof.epochs(d.epochs),
            paper_epochs=d.epochs, warmup_epochs=d.warmup_epochs, decay_epochs=max(200, d.epochs),
            batch_size=prof.batch_size or d.batch_size, grad_clip=d.grad_clip,
            train_loss=d.train_loss, metric=task.metric.name, direction=task.metric.direction)
        splits = {s: ctx.data.split(s) for s in ctx.data.x}
        resume = None
        ckpt = ctx.session.get_checkpoint()
        if ckpt is not None and (Path(ckpt) / "state.pt").exists():
            resume = torch.load(Path(ckpt) / "state.pt", weights_only=False)
        res = finetune(model, splits, settings, ctx.seed, ctx.device, ctx.report,
                       train_indices=ctx.session.shard, wrap=ctx.session.prepare_model,
                       evaluate_test=ctx.phase == "final",
                       extra_metrics=upstream.get("align_summary"), resume=resume,
                       check=ctx.check_finite)
        metrics = {f"val_{task.metric.name}": res.best_val, "best_epoch": res.best_epoch}
        if res.test is not None:
            metrics[f"test_{task.metric.name}"] = res.test
            metrics[f"test_{task.metric.name}_last"] = res.test_last
        return {"metrics": metrics, "finetune_history": res.history}


class _Paper(FineTuningMethod):
    """Switches of the paper's RECRAFT (used by several ablations)."""

    fa_loss = "w1"
    fld = "tgt_given_src"
    combine = "joint"
    recal = "paper"
