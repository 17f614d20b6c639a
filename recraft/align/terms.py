"""The two stage-1 terms as objects: Feature Alignment (FA) and Feature-Label Distortion (FLD).

Each term owns its random stream (so removing one term leaves the other's batches unchanged),
draws its own batches and evaluates its loss on the target model's current embedder:

* :class:`FATerm` — a fresh batch of ``fa_batch`` target samples per evaluation (ORCA: up to
  ``fa_batch`` members of every k-means cluster), token-mean embeddings against the source
  features, with the configured FA loss (``w1``, ``sinkhorn_div`` or ORCA's ``otdd``).
* :class:`FLDTerm` — epochs of shuffled mixed-class batches (or the code's per-class chunks), the
  source head on the frozen body's features, and the chosen conditional entropy of the soft LEEP
  joint, estimated over the whole training set (``fld_estimator="full"``,
  :class:`~recraft.losses.RunningJoint`) or over the batch alone (``"batch"``, the code).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from harness.scoring.losses import loss_by_name
from recraft.align.plan import AlignSettings
from recraft.losses import FeatureAlignment, RunningJoint, fld_loss, source_entropy
from recraft.training import batches, to_tensor

__all__ = ["FATerm", "FLDTerm", "UnconvergedCounter"]

_UNCONVERGED = "Sinkhorn did not converge"


class UnconvergedCounter:
    """Catches "Sinkhorn did not converge" warnings, counts them, re-emits the others."""

    def __init__(self):
        self.total = 0
        self.last = 0

    def __enter__(self):
        self._cm = warnings.catch_warnings(record=True)
        self._rec = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        self.last = 0
        for w in self._rec:
            if _UNCONVERGED in str(w.message):
                self.last += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.total += self.last
        return False


class FATerm:
    """Feature Alignment between the source features and the target's token-mean embeddings."""

    name = "fa"

    def __init__(self, model, source, x_train: np.ndarray, labels: np.ndarray | None,
                 weights: np.ndarray | None, s: AlignSettings, rng: np.random.Generator, device):
        self.model, self.x, self.s, self.rng, self.device = model, x_train, s, rng, device
        self.n = len(x_train)
        self.counter = UnconvergedCounter()
        self.otdd = s.fa_loss == "otdd"
        solver = {k: v for k, v in (("stop_thr", s.fa_stop_thr), ("num_iter_max", s.fa_iters),
                                    ("solver", s.ot_solver)) if v is not None}
        src = source.features.to(device)
        self.labels, self.weights = labels, weights
        if self.otdd:
            if labels is None:
                raise ValueError("ORCA's OTDD needs the target clusters")
            # ORCA's per-cluster sum weighs each cluster by its share of the whole training set
            self.loss = FeatureAlignment("otdd", src, source.labels.to(device), reg=s.fa_reg,
                                         per_cluster=s.otdd_per_cluster,
                                         cluster_weights=weights if s.otdd_per_cluster else None,
                                         **solver)
            self.labels_t = torch.as_tensor(labels, device=device)
        else:
            self.loss = FeatureAlignment(s.fa_loss, src, reg=s.fa_reg, **solver)

    def next_batch(self) -> np.ndarray:
        """Indices of the next FA batch (each evaluation draws afresh)."""
        s = self.s
        if not self.otdd or not s.otdd_per_cluster:
            return self.rng.choice(self.n, min(s.fa_batch, self.n), replace=False)
        # ORCA: per cluster, up to fa_batch random members (the whole cluster if smaller)
        parts = []
        for k in range(len(self.weights)):
            members = np.flatnonzero(self.labels == k)
            if len(members):
                parts.append(self.rng.choice(members, min(s.fa_batch, len(members)), replace=False))
        return np.concatenate(parts)

    def __call__(self, idx: np.ndarray) -> torch.Tensor:
        feats = self.model.pooled_embedding(to_tensor(self.x[idx], self.device))
        with self.counter:
            if not self.otdd:
                return self.loss(feats)
            return self.loss(feats, self.labels_t[torch.as_tensor(idx, device=self.device)])

    def step(self) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss on a fresh batch, what to log)."""
        v = self(self.next_batch())
        return v, {"fa": float(v.detach()), "fa_unconverged": float(self.counter.last)}


class FLDTerm:
    """Feature-Label Distortion of the source head's pseudo labels against the target classes."""

    name = "fld"

    def __init__(self, model, head, x_train: np.ndarray, y_train: np.ndarray, labels: np.ndarray,
                 weights: np.ndarray, s: AlignSettings, rng: np.random.Generator, device,
                 loss_fn=None):
        self.model, self.head, self.s, self.rng, self.device = model, head, s, rng, device
        self.x, self.y, self.labels, self.weights = x_train, y_train, labels, weights
        self.n, self.n_cls = len(x_train), len(weights)
        self.dense_1d = model.kind == "1d" and model.task == "dense"
        self.task_loss = (None if s.target_loss == "none"
                          else loss_fn or loss_by_name(s.target_loss))
        self.joint = (RunningJoint(torch.as_tensor(labels), self.n_cls, token_mode=s.token_mode)
                      if s.fld_estimator == "full" else None)

    # ---- batches
    def epoch_batches(self) -> list[tuple[np.ndarray, float]]:
        """One epoch of (indices, per-batch weight), drawn from this term's random stream."""
        s, gen = self.s, self.rng
        small = max(2, s.fld_batch // 2)
        if s.fld_batching == "mixed":
            out = list(batches(gen.permutation(self.n), s.fld_batch))
            if len(out) > 1 and len(out[-1]) < small:
                out.pop()      # a small leftover joins no batch
            return [(b, 1.0) for b in out]
        # per class, in random order, chunks of fld_batch samples with the code's weights
        # w_k · |C| / #batches_k (spec §5.2)
        chunks = []
        for k in gen.permutation(self.n_cls):
            members = gen.permutation(np.flatnonzero(self.labels == k))
            n_k_batches = max(1, math.ceil(len(members) / 4))
            for chunk in batches(members, s.fld_batch):
                if len(chunk) < small and len(chunk) != len(members):
                    continue  # the code drops small leftovers
                chunks.append((chunk, float(self.weights[k]) * len(chunk) / n_k_batches))
        return chunks

    def plan_batches(self, count: int) -> list[tuple[np.ndarray, float]]:
        """``count`` batches: whole epochs of :meth:`epoch_batches`."""
        out: list[tuple[np.ndarray, float]] = []
        while len(out) < count:
            epoch = self.epoch_batches()
            if not epoch:
                raise ValueError("an FLD epoch has no batch")
            out.extend(epoch)
        if len(out) != count:
            raise RuntimeError(f"the plan has {count} FLD batches but whole epochs give {len(out)}")
        return out

    # ---- values
    def probs(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(pseudo-label probabilities, token features) of samples ``idx``."""
        feats = self.model.token_features(to_tensor(self.x[idx], self.device))
        logits = self.head(feats if self.dense_1d else feats.mean(dim=1))
        return torch.softmax(logits, dim=-1), feats

    @torch.no_grad()
    def all_probs(self, size: int = 64) -> torch.Tensor:
        """Pseudo-label probabilities of every training sample (no gradient), in order."""
        return torch.cat([self.probs(b)[0] for b in batches(np.arange(self.n), size)])

    def start(self) -> None:
        """Before the first step: every sample's pseudo labels for the whole-set estimate."""
        if self.joint is not None:
            self.joint.reset(self.all_probs())

    def __call__(self, idx: np.ndarray, weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        """(``weight`` × FLD on batch ``idx``, what to log: FLD, H(Z_s), the batch's target loss)."""
        probs, feats = self.probs(idx)
        if self.joint is not None:
            loss = self.joint.loss(torch.as_tensor(idx), probs, self.s.fld)
        else:
            loss = fld_loss(probs, torch.as_tensor(self.labels[idx], device=self.device), self.n_cls,
                            self.s.fld, token_mode=self.s.token_mode)
        row = {"fld": float(loss.detach()),
               "source_entropy": float(source_entropy(probs.detach(), token_mode=self.s.token_mode))}
        if self.task_loss is not None:
            with torch.no_grad():
                row["target_loss"] = float(self.task_loss(self.model.predict_from_features(feats),
                                                          to_tensor(self.y[idx], self.device)))
        return weight * loss, row

    @torch.no_grad()
    def probe(self, idx: np.ndarray) -> float:
        """The FLD value a probe reports: over the whole training set with the full estimator
        (a fresh pass), else on the probe samples (the code's batch estimate)."""
        if self.joint is not None:
            whole = RunningJoint(torch.as_tensor(self.labels), self.n_cls, token_mode=self.s.token_mode)
            whole.reset(self.all_probs())
            return whole.value(self.s.fld)
        probs, _ = self.probs(idx)
        return float(fld_loss(probs, torch.as_tensor(self.labels[idx], device=self.device),
                              self.n_cls, self.s.fld, token_mode=self.s.token_mode))
