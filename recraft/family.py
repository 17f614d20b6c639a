"""The shared implementation behind RECRAFT, its ablations, ORCA and NFT as method plugins.

Each method is a subclass that sets class-level switches (which FA loss, which FLD direction,
joint or sequential, recalibration mode, embedder init) and points at its search-space module.
Everything a method will do before fine-tuning resolves to a :class:`MethodPlan` (the source
side's plan and the stage-1 plan, :meth:`FineTuningMethod.plan`), and the stages run exactly that
plan. An ablation declares what it removes from its parent (``ablates``: ``"fa"``, ``"fld"`` or
``"recalibration"``); its plan is its parent's with that factor removed, so it keeps the parent's
steps, learning rates and weights. A variant that swaps a switch declares it (``replaces``).
``tests/test_ablation_plans.py`` checks, for every method with ``variant_of``, that its plan
differs from its parent's by what it declares and nothing else.

Stage ``align`` runs stage 1 (cached by content key when the harness gives a cache folder);
stage ``finetune`` runs stage 2 and reports the validation metric every epoch.
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from harness.methods.contract import Method, Stage
from recraft.align import AlignSettings, Aligner, Stage1Plan, plan_stage1
from recraft.source.plan import SourcePlan
from recraft.snapshots import SNAPSHOT_SEED
from search_spaces.common import embedder_lr

ALIGN_KEYS = ("align.epsilon", "align.fa_steps", "align.fld_epochs", "align.lr")
FINETUNE_KEYS = ("finetune.lr", "finetune.weight_decay")
#: the paper profile's source-head epochs, the unit the profiles' head budgets are scaled from
PAPER_HEAD_EPOCHS = 20
#: the reference code's source head: (CE epochs, penalty epochs) at batch size 4 (spec §2, §4.2)
REFERENCE_HEAD = {"2d": (10, 10), "1d": (30, 0)}
FACTORS = ("fa", "fld", "recalibration")


@dataclass(frozen=True)
class MethodPlan:
    """What a method does before fine-tuning: its source side and its stage 1 (None: nothing)."""

    source: SourcePlan | None
    stage1: Stage1Plan | None

    def without(self, *factors: str) -> "MethodPlan":
        """The plan with ``factors`` removed: FA or FLD terms, or the recalibration penalty.
        Without FLD the source head is unused, so only the features are built."""
        unknown = set(factors) - set(FACTORS)
        if unknown:
            raise ValueError(f"unknown factor(s) {sorted(unknown)}; factors: {FACTORS}")
        stage1, source = self.stage1, self.source
        terms = tuple(f for f in factors if f in ("fa", "fld"))
        if stage1 is not None and terms:
            stage1 = stage1.without(*terms)
        if source is not None and "recalibration" in factors:
            source = source.without_penalty()
        if stage1 is not None and not stage1.active:
            return MethodPlan(None, None)
        if source is not None and stage1 is not None and "fld" not in stage1.terms:
            source = source.features_only()
        return MethodPlan(source, stage1)

    def canonical(self) -> "MethodPlan":
        """Up to what the optimizers cannot see (:meth:`Stage1Plan.canonical`)."""
        return replace(self, stage1=self.stage1.canonical() if self.stage1 is not None else None)


class FineTuningMethod(Method):
    """Base for every method here: switches + a search-space module + the two stages."""

    space_module: ClassVar[str] = ""
    # stage-1 switches (see recraft.align.AlignSettings)
    fa_loss: ClassVar[str] = "none"
    fld: ClassVar[str] = "none"
    combine: ClassVar[str] = "sequential"
    fld_estimator: ClassVar[str] = "full"
    recal: ClassVar[str] = "paper"            # paper | reference | none
    embedder_init: ClassVar[str] = "recraft"  # recraft | orca
    train_source_head: ClassVar[bool] = False
    token_mode: ClassVar[str] = "draws"
    reference_schedule: ClassVar[bool] = False
    #: FA is ε·FA (the paper's eq. 14); the reference code and ORCA do not weight it
    epsilon_weights_fa: ClassVar[bool] = False
    #: what this ablation removes from its parent (``variant_of``): "fa", "fld", "recalibration"
    ablates: ClassVar[tuple[str, ...]] = ()
    #: stage-1 switches (``AlignSettings`` fields) this variant swaps for its parent's, e.g.
    #: ``("fa_loss",)`` for RECRAFT with another FA loss; everything else stays the parent's
    replaces: ClassVar[tuple[str, ...]] = ()
    #: a variant that reproduces another implementation of its parent (not an ablation)
    reproduction: ClassVar[bool] = False

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

    # ---- plans
    def align_settings(self, task, profile, config: Mapping[str, Any]) -> AlignSettings:
        """Stage-1 settings with the full budgets of every term of the parent method (an ablated
        term's budget still shapes the schedule, e.g. the joint mode's step count)."""
        d = task.defaults
        return AlignSettings(
            fa_loss=self.fa_loss, fld=self.fld, combine=self.combine,
            epsilon=(float(config.get("align.epsilon", d.epsilon)) if self.epsilon_weights_fa
                     else None),
            fa_steps=profile.fa_steps(int(config.get("align.fa_steps", d.fa_epochs))),
            fld_epochs=profile.fld_epochs(int(config.get("align.fld_epochs", d.fld_epochs))),
            lr=float(config.get("align.lr", embedder_lr(task))), fld_estimator=self.fld_estimator,
            n_classes=d.n_label_classes, train_source_head=self.train_source_head,
            token_mode=self.token_mode, reference_schedule=self.reference_schedule,
            schedule_scale=profile.fa_scale, target_loss=d.train_loss)

    def source_plan(self, task, profile, config: Mapping[str, Any], seed: int) -> SourcePlan:
        """The source side: the profile's proxy and head budget; the reference code's head
        (batch 4; 2D 10 CE + 10 penalty epochs, 1D 30 CE epochs) in reference mode."""
        kind = task.modality
        if self.recal == "reference":
            scale = profile.source_head_epochs / PAPER_HEAD_EPOCHS
            ce, pen = (0 if e == 0 else max(1, round(e * scale)) for e in REFERENCE_HEAD[kind])
            batch, pooling, eps = 4, "all_positions", None
        else:
            ce = pen = profile.source_head_epochs
            batch, pooling = 16, "real_tokens"
            eps = float(config.get("align.epsilon", task.defaults.epsilon))
        plan = SourcePlan(proxy=profile.proxy_1d if kind == "1d" else profile.proxy_2d,
                          n_samples=profile.source_samples, seed=seed, mode=self.recal,
                          epsilon=eps, head_epochs=ce, recal_epochs=pen, batch_size=batch,
                          feature_pooling=pooling)
        return plan.without_penalty() if self.recal == "none" else plan

    def plan(self, task, profile, config: Mapping[str, Any], n_train: int, seed: int = 0,
             class_sizes: Sequence[int] | None = None) -> MethodPlan:
        """Everything this method does before fine-tuning on ``n_train`` training samples.

        The parent's plan (this class's switches) minus the ablated factors. Per-class FLD
        batching (the reference code) needs the target class sizes."""
        if not self.aligns:
            return MethodPlan(None, None)
        d = task.defaults
        stage1 = plan_stage1(self.align_settings(task, profile, config), d.optimizer,
                             d.weight_decay, n_train, class_sizes)
        return MethodPlan(self.source_plan(task, profile, config, seed),
                          stage1).without(*self.ablates)

    # ---- helpers
    def _backbone(self, ctx) -> str:
        return ctx.profile.backbone(ctx.task.modality)

    def _model(self, ctx, align: bool):
        from recraft.model import build_target_model
        from recraft.targets import head_output, standardization_for

        x, y = ctx.data.split("train")
        prof = ctx.profile
        # the same initial weights whether or not stage 1 came from the cache
        torch.manual_seed(ctx.seed)
        model = build_target_model(self._backbone(ctx), x.shape[1:], head_output(ctx.task, ctx.data),
                                   target_seq_len=prof.target_seq_len(ctx.task.defaults.target_seq_len),
                                   embedder_init=self.embedder_init, align=align, dropout=0.0,
                                   dense_head_1d=prof.dense_head_1d,
                                   embedder_bias=prof.embedder_bias if ctx.task.modality == "1d" else 0.0)
        if prof.standardize:
            model.set_standardization(standardization_for(ctx.task, x, y))
        return model

    # ---- stages
    def stage_align(self, ctx, config, upstream):
        from recraft.cache import ArtifactCache, content_key
        from recraft.targets import stage1_classes, training_loss

        x, y = ctx.data.split("train")
        settings = self.align_settings(ctx.task, ctx.profile, config)
        # the classes of FLD and ORCA's OTDD: a classification task's own labels, k-means
        # classes of other targets (recraft.targets)
        labels = None
        if settings.fld_batching == "per_class" and settings.fld != "none" and settings.fld_epochs > 0:
            labels = stage1_classes(ctx.task, y, settings.n_classes, ctx.seed)
        # every final seed builds its own source side (search trials share seed 0's, cached)
        plan = self.plan(ctx.task, ctx.profile, config, len(x), seed=ctx.seed,
                         class_sizes=np.bincount(labels) if labels is not None else None)
        consumed = {k: config[k] for k in ALIGN_KEYS if k in config}
        key = content_key(stage="align", task=ctx.task.name, task_version=ctx.task.version,
                          method=self.name, method_version=self.version, consumed=consumed,
                          plan=plan, seed=ctx.seed, profile=ctx.profile.name,
                          backbone=self._backbone(ctx), n_train=len(x), data=ctx.data.source)

        def build() -> dict[str, Any]:
            model = self._model(ctx, align=True)
            if plan.stage1 is None:
                state = {k: v.detach().clone() for k, v in model.embedder.state_dict().items()}
                return {"embedder_state": state, "log": [], "source": {}}
            source = self._source_side(ctx, plan.source)
            classes = labels
            if classes is None and plan.stage1.needs_labels:
                classes = stage1_classes(ctx.task, y, settings.n_classes, ctx.seed)
            res = Aligner(model, source, x, y, ctx.seed, ctx.device, labels=classes,
                          check=ctx.check_finite, loss_fn=training_loss(ctx.task)).run(plan.stage1)
            return {"embedder_state": res.embedder_state, "log": res.log,
                    "source": _source_summary(source)}

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

    def _snapshot(self, ctx, config, model) -> None:
        """Source and target features before stage 2 (Fig. 2, see :mod:`recraft.snapshots`)."""
        from recraft.snapshots import MAX_TARGET, save_snapshot, snapshot_path, target_features

        try:
            x, _ = ctx.data.split("train")
            plan = self.source_plan(ctx.task, ctx.profile, config, ctx.seed).features_only()
            source = self._source_side(ctx, plan).features.detach().cpu().numpy()
            target = target_features(model, x[:MAX_TARGET], ctx.device)
            save_snapshot(snapshot_path(ctx.cache_dir.parent, ctx.task.name, self.name), source,
                          target, aligned=self.aligns, seed=ctx.seed)
        except Exception as exc:  # noqa: BLE001 - a figure's input never fails a final run
            warnings.warn(f"no feature snapshot for {ctx.task.name}/{self.name}: {exc}",
                          stacklevel=2)

    def _source_side(self, ctx, plan: SourcePlan):
        from recraft.cache import ArtifactCache

        cache = ArtifactCache(ctx.cache_dir / "source") if ctx.cache_dir else None
        return plan.build(self._backbone(ctx), cache, ctx.device)

    def stage_finetune(self, ctx, config, upstream):
        model = self._model(ctx, align=self.aligns)
        if "embedder_state" in upstream:
            model.embedder.load_state_dict(upstream["embedder_state"])
        if ctx.phase == "final" and ctx.seed == SNAPSHOT_SEED and ctx.cache_dir is not None:
            self._snapshot(ctx, config, model)
        # the task's loss, optimizer and schedule, resume, DDP and the test read: the harness's fit
        return ctx.fit(model, config, extra_metrics=upstream.get("align_summary")).stage_output()


def _source_summary(source) -> dict[str, Any]:
    """What the run logs about its source side (``source.*`` metrics and result columns):
    ε beside the achieved Lipschitz level and whether it is within tolerance (paper mode)."""
    out = {"proxy": source.proxy_name, "accuracy_after": source.accuracy_after,
           "max_grad_norm_after": source.max_grad_norm_after, "lipschitz": source.lipschitz,
           "head_scale": source.head_scale}
    if source.epsilon is not None:
        out["epsilon"] = source.epsilon
    if source.lipschitz_reached is not None:
        out["lipschitz_reached"] = float(source.lipschitz_reached)
    # a features-only source side (no head) has no accuracy or level to report
    return {k: v for k, v in out.items() if not isinstance(v, float) or np.isfinite(v)}


class _Paper(FineTuningMethod):
    """Switches of the paper's RECRAFT (used by several ablations)."""

    fa_loss = "w1"
    fld = "tgt_given_src"
    combine = "sequential"
    recal = "paper"
    epsilon_weights_fa = True
