"""Feature-Label Distortion (FLD) through the soft LEEP joint (spec §5.1, §5.2, §5.4).

Each target sample ``x_i`` with (discretised) target label ``y_i = k`` gets a soft pseudo source
label ``p(z | x_i) = softmax(h_s(body(phi(x_i))))``. The soft LEEP joint is

    P(z, k) = (1/n) * sum_{i : y_i = k} p(z | x_i)            (shape (Z, K), sums to 1)

and FLD is a conditional entropy of that joint, in nats:

* ``"tgt_given_src"``: ``H(Y_t | Y_s)``, the paper's meaning (eqs. 20-21: the target label should be
  predictable from the source label). A collapse of every pseudo label onto one source class
  gives ``H(Y_t)``, its *maximum*, so this direction is not minimised by collapse.
* ``"src_given_tgt"``: ``H(Y_s | Y_t) = sum_k P(k) H(P(. | k))``, what the reference code minimises
  by default (per-class entropy of the mean pseudo-label distribution). Its global minimum 0 is
  reached by collapse (spec §10.6, the code's known weakness); log :func:`source_entropy` to see it.

Dense 1-D outputs give one pseudo-label distribution per token, ``source_probs`` of shape
``(n, T, Z)``. ``token_mode`` chooses how tokens enter:

* ``"draws"`` (default): tokens are extra draws of the same sample, ``p(z | x_i)`` is the mean over
  its tokens; one joint ``(Z, K)``. Every sample has the same number of tokens, so this is
  the LEEP joint over all ``n * T`` (token, label) draws.
* ``"per_token"``: one joint per token position ``(T, Z, K)``; entropies are computed per position
  and **summed** over positions, which is what the reference code does (spec §5.2).

Estimating over the whole target set
------------------------------------
The paper's FLD counts over the whole target training set (eq. 19: ``N(z, y_t) / n``). A plug-in
conditional entropy on a small batch is biased low (a batch of 28 cannot fill a 9 × 10 joint), and
the bias is largest for confident pseudo labels: on 2800 samples with 10 target classes, a
confident pseudo labelling *unrelated* to the targets has ``H(Y_t | Y_s)`` ≈ 2.29 but a mean
28-sample estimate of ≈ 1.2, below an *informative* labelling (1.44 full, 1.33 estimated), so a
minibatch objective prefers the uninformative labelling (``tests/test_losses_fld.py``).
:class:`RunningJoint` keeps every training sample's latest (detached) pseudo-label distribution and
evaluates the entropy of the whole-set joint with the current batch's rows live, so the value is
the whole-set estimate and its gradient, scaled by ``n / |batch|``, is an unbiased estimate of the
whole-set gradient.
"""
from __future__ import annotations

from enum import Enum
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "FLDDirection",
    "RunningJoint",
    "conditional_entropy",
    "fld_loss",
    "leep_joint",
    "source_entropy",
]

EPS = 1e-10  # inside logs, as in the reference code


class FLDDirection(str, Enum):
    """FLD direction by config string."""

    TGT_GIVEN_SRC = "tgt_given_src"  # paper: H(Y_t | Y_s)
    SRC_GIVEN_TGT = "src_given_tgt"  # reference code default: H(Y_s | Y_t)


TokenMode = Literal["draws", "per_token"]


def _check_probs(source_probs: Tensor, token_mode: str) -> None:
    if source_probs.dim() not in (2, 3):
        raise ValueError(f"source_probs must be (n, Z) or (n, T, Z), got {tuple(source_probs.shape)}")
    if token_mode not in ("draws", "per_token"):
        raise ValueError(f"token_mode must be 'draws' or 'per_token', got {token_mode!r}")


def leep_joint(source_probs: Tensor, target_labels: Tensor, n_target: int, *,
               token_mode: TokenMode = "draws") -> Tensor:
    """Soft LEEP joint ``P(z, k) = (1/n) sum_{i: y_i = k} p(z | x_i)``.

    ``source_probs``: ``(n, Z)`` probabilities (rows sum to 1), or ``(n, T, Z)`` per token;
    ``target_labels``: ``(n,)`` integer labels in ``[0, n_target)``. Returns ``(Z, n_target)``, or
    ``(T, Z, n_target)`` for ``token_mode="per_token"`` with 3-D input. Differentiable w.r.t.
    ``source_probs``; classes absent from the batch give zero columns.
    """
    _check_probs(source_probs, token_mode)
    n = source_probs.shape[0]
    if target_labels.shape != (n,):
        raise ValueError(f"target_labels must have shape ({n},), got {tuple(target_labels.shape)}")
    labels = target_labels.long()
    if n and (int(labels.min()) < 0 or int(labels.max()) >= n_target):
        raise ValueError(f"target labels must lie in [0, {n_target})")
    onehot = F.one_hot(labels, n_target).to(source_probs.dtype)  # (n, K)
    if source_probs.dim() == 3:
        if token_mode == "per_token":
            return torch.einsum("ntz,nk->tzk", source_probs, onehot) / n
        source_probs = source_probs.mean(dim=1)
    return source_probs.transpose(0, 1) @ onehot / n


def _xlogy_safe(p: Tensor, q: Tensor) -> Tensor:
    """``p * log(p / q)`` with eps inside the logs: finite, 0 where ``p = 0``, differentiable."""
    return p * (torch.log(p + EPS) - torch.log(q + EPS))


def conditional_entropy(joint: Tensor, given: Literal["source", "target"]) -> Tensor:
    """Conditional entropy (nats) of a joint ``(..., Z, K)`` over (source label, target label).

    ``given="source"``: ``H(Y_t | Y_s) = -sum P(z,k) log(P(z,k) / P(z))`` (the paper's FLD).
    ``given="target"``: ``H(Y_s | Y_t) = -sum P(z,k) log(P(z,k) / P(k))`` (the reference code's).
    Leading dimensions (token positions) are summed. Empty rows/columns contribute 0, without NaN
    values or NaN gradients.
    """
    if joint.dim() < 2:
        raise ValueError(f"joint must be (..., Z, K), got {tuple(joint.shape)}")
    if given == "source":
        marginal = joint.sum(dim=-1, keepdim=True)  # P(z)
    elif given == "target":
        marginal = joint.sum(dim=-2, keepdim=True)  # P(k)
    else:
        raise ValueError(f"given must be 'source' or 'target', got {given!r}")
    return -_xlogy_safe(joint, marginal).sum()


def fld_loss(source_probs: Tensor, target_labels: Tensor, n_target: int,
             direction: FLDDirection | str = FLDDirection.TGT_GIVEN_SRC, *,
             token_mode: TokenMode = "draws") -> Tensor:
    """FLD surrogate on a batch: the chosen conditional entropy of the soft LEEP joint.

    ``direction="tgt_given_src"`` -> ``H(Y_t | Y_s)`` (paper); ``"src_given_tgt"`` ->
    ``H(Y_s | Y_t)`` (reference code). Differentiable w.r.t. ``source_probs``.
    """
    direction = FLDDirection(direction)
    joint = leep_joint(source_probs, target_labels, n_target, token_mode=token_mode)
    given = "source" if direction is FLDDirection.TGT_GIVEN_SRC else "target"
    return conditional_entropy(joint, given)


def source_entropy(source_probs: Tensor, *, token_mode: TokenMode = "draws") -> Tensor:
    """``H(Z_s)`` (nats) of the mean pseudo-label distribution; near 0 signals collapse.

    For ``(n, T, Z)`` input: ``"draws"`` averages over samples and tokens; ``"per_token"`` sums
    the per-position entropies (matching :func:`fld_loss`'s token handling).
    """
    _check_probs(source_probs, token_mode)
    if source_probs.dim() == 3 and token_mode == "per_token":
        marginal = source_probs.mean(dim=0)  # (T, Z)
    else:
        marginal = source_probs.reshape(-1, source_probs.shape[-1]).mean(dim=0)
    return -(marginal * torch.log(marginal + EPS)).sum()


class RunningJoint:
    """The soft LEEP joint over all ``n`` training samples, with one batch live.

    Holds each sample's latest pseudo-label distribution (detached; ``(Z,)``, or ``(T, Z)`` per
    token with ``token_mode="per_token"``) and their label-wise sum. :meth:`loss` returns the
    conditional entropy of the joint in which the batch's stored rows are replaced by its live
    (differentiable) ones, then stores them; the other rows are the values from the last time
    their sample was seen (:meth:`reset` fills every row, e.g. from a pass without gradient).
    """

    def __init__(self, target_labels: Tensor, n_target: int, *, token_mode: TokenMode = "draws"):
        if target_labels.dim() != 1 or target_labels.numel() == 0:
            raise ValueError("target_labels must be a non-empty 1-D tensor")
        if token_mode not in ("draws", "per_token"):
            raise ValueError(f"token_mode must be 'draws' or 'per_token', got {token_mode!r}")
        self.labels = target_labels.long()
        if int(self.labels.min()) < 0 or int(self.labels.max()) >= n_target:
            raise ValueError(f"target labels must lie in [0, {n_target})")
        self.n_target = n_target
        self.token_mode = token_mode
        self.rows: Tensor | None = None     # (n, Z) or (n, T, Z), float64
        self.total: Tensor | None = None    # sum of rows by label: (Z, K) or (T, Z, K)

    @property
    def n(self) -> int:
        return int(self.labels.numel())

    def _rows(self, source_probs: Tensor) -> Tensor:
        _check_probs(source_probs, self.token_mode)
        if source_probs.dim() == 3 and self.token_mode == "draws":
            return source_probs.mean(dim=1)   # tokens are draws of the same sample
        return source_probs

    def _by_label(self, rows: Tensor, labels: Tensor) -> Tensor:
        onehot = F.one_hot(labels, self.n_target).to(rows.dtype)
        if rows.dim() == 3:
            return torch.einsum("ntz,nk->tzk", rows, onehot)
        return rows.transpose(0, 1) @ onehot

    @torch.no_grad()
    def reset(self, source_probs: Tensor) -> None:
        """Every sample's pseudo-label distribution, in training-set order."""
        rows = self._rows(source_probs).detach().to(torch.float64)
        if rows.shape[0] != self.n:
            raise ValueError(f"reset needs {self.n} rows, got {rows.shape[0]}")
        self.labels = self.labels.to(rows.device)
        self.rows = rows.clone()
        self.total = self._by_label(self.rows, self.labels)

    def joint(self, index: Tensor, source_probs: Tensor) -> Tensor:
        """The whole-set joint ``(…, Z, K)`` with rows ``index`` taken from ``source_probs``."""
        if self.rows is None:
            raise RuntimeError("RunningJoint.reset must fill every row before the first batch")
        index = index.to(self.rows.device).long()
        live = self._rows(source_probs).to(torch.float64)
        labels = self.labels[index]
        stale = self._by_label(self.rows[index], labels)
        return (self.total - stale + self._by_label(live, labels)) / self.n

    def loss(self, index: Tensor, source_probs: Tensor,
             direction: FLDDirection | str = FLDDirection.TGT_GIVEN_SRC) -> Tensor:
        """Whole-set FLD with the batch live; the gradient is scaled by ``n / |batch|``.

        The value is the conditional entropy of the whole-set joint. Its gradient reaches only the
        batch's rows; scaled by ``n / |batch|`` it is an unbiased estimate (over uniformly drawn
        batches) of the gradient of the whole-set objective. The batch's rows are then stored.
        """
        direction = FLDDirection(direction)
        given = "source" if direction is FLDDirection.TGT_GIVEN_SRC else "target"
        index = torch.as_tensor(index).long()
        value = conditional_entropy(self.joint(index, source_probs), given)
        factor = self.n / max(1, int(index.numel()))
        out = value.detach() + factor * (value - value.detach())
        self.update(index, source_probs)
        return out.to(source_probs.dtype)

    @torch.no_grad()
    def update(self, index: Tensor, source_probs: Tensor) -> None:
        """Store the batch's rows (detached)."""
        index = torch.as_tensor(index).to(self.rows.device).long()
        new = self._rows(source_probs).detach().to(torch.float64)
        labels = self.labels[index]
        self.total += self._by_label(new, labels) - self._by_label(self.rows[index], labels)
        self.rows[index] = new

    @torch.no_grad()
    def value(self, direction: FLDDirection | str = FLDDirection.TGT_GIVEN_SRC) -> float:
        """The conditional entropy of the stored whole-set joint."""
        if self.total is None:
            raise RuntimeError("RunningJoint.reset must fill every row first")
        given = "source" if FLDDirection(direction) is FLDDirection.TGT_GIVEN_SRC else "target"
        return float(conditional_entropy(self.total / self.n, given))
