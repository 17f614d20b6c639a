"""Stage 1 of RECRAFT/ORCA: settings and plans (:mod:`.plan`), the FA and FLD terms
(:mod:`.terms`) and the aligner that runs a plan on a target model's embedder (:mod:`.aligner`)."""
from .aligner import AlignResult, Aligner
from .plan import AlignSettings, PhasePlan, Stage1Plan, TermPlan, fld_batch_count, plan_stage1

__all__ = ["AlignResult", "AlignSettings", "Aligner", "PhasePlan", "Stage1Plan", "TermPlan",
           "fld_batch_count", "plan_stage1", "run_alignment"]


def run_alignment(model, source, x_train, y_train, s: AlignSettings, optimizer_name: str,
                  weight_decay: float, seed: int, device, check=None,
                  ablate: tuple[str, ...] = ()) -> AlignResult:
    """Plan stage 1 for ``s`` (minus the terms in ``ablate``) on this training set and run it."""
    import numpy as np

    from recraft.discretise import discretise_targets

    labels = None
    if s.fld_batching == "per_class" and s.fld != "none" and s.fld_epochs > 0:
        labels = discretise_targets(y_train, n_classes=s.n_classes, seed=seed)
    sizes = np.bincount(labels) if labels is not None else None
    plan = plan_stage1(s, optimizer_name, weight_decay, len(x_train), sizes).without(*ablate)
    return Aligner(model, source, x_train, y_train, seed, device, labels=labels,
                   check=check).run(plan)
