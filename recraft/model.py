"""The target model: task embedder → pretrained body (own input layer bypassed) → task head (spec §1).

``build_target_model("roberta-tiny", (1, 1024), (1, 1024), target_seq_len=128)`` gives a 1D model with
stride 8 (128 tokens); ``build_target_model("swin-tiny-random", (1, 64, 64), (1, 64, 64))`` a 2D one.
An integer ``output_shape`` (or a 1-tuple) selects the point head (classification / scalar).

Methods the stages use:

* ``forward(x)`` → predictions shaped ``(B, *output_shape)``;
* ``embed(x)`` → the embedder's token sequence (the reference's "raw" mode);
* ``pooled_embedding(x)`` → token-mean of ``embed(x)``, ``(B, embed_dim)``: FA's target features;
* ``token_features(x)`` → last hidden state per token, ``(B, T', hidden_dim)`` (1D dense FLD);
* ``body_features(x)`` → token-mean of the last hidden state, ``(B, hidden_dim)`` (the source head's
  input during FLD; for Swin this is the final-LayerNorm average pool);
* ``embedder_parameters()`` / ``body_parameters()`` / ``head_parameters()`` for stage-wise optimisers.

Standardisation (``set_standardization``, off by default): inputs are shifted by the train-mean
input field and divided by one scalar (the train inputs' std) before the embedder, and the head's
output is mapped back as ``y_mean + y_scale * head(...)``, where ``y_mean`` is the train-mean target
field and ``y_scale`` the std of the train targets around it. A model whose head outputs 0 then
predicts the train-mean field, the ``mean`` floor, instead of 0; and every parameter works at unit
scale, so Adam's per-step movement of about the learning rate is not spent on reaching the
targets' offset (shallow-water's targets sit at about 1.03, darcy's at 0.014). The buffers are part
of the state dict; every stage (alignment included) sees the same standardised inputs.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import torch
from torch import nn

from .backbones import Backbone, BackboneSpec, load_backbone
from .embedders import Embedder1D, Embedder2D, init_embedder_1d, init_embedder_2d, stride_for
from .heads import DENSE_HEADS_1D, DenseDecoder2D, DensePooler1D, LinearHead1D, PointHead

__all__ = ["TargetModel", "build_target_model", "standardization_stats"]


def standardization_stats(x: "np.ndarray", y: "np.ndarray") -> dict[str, torch.Tensor]:
    """Shift/scale buffers from training arrays ``x`` ``(N, *in)``, ``y`` ``(N, *out)`` (float32).

    Shifts are the per-position train means; scales are one scalar each (a per-position std would
    blow up where a field barely varies, e.g. at a fixed boundary value).
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"standardisation needs at least 2 training samples, got {len(x)}")
    xm, ym = x.mean(axis=0, keepdims=True), y.mean(axis=0, keepdims=True)
    xs, ys = float((x - xm).std()), float((y - ym).std())
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return {"x_shift": as_t(xm), "x_scale": as_t(xs if xs > 1e-12 else 1.0),
            "y_shift": as_t(ym), "y_scale": as_t(ys if ys > 1e-12 else 1.0)}


class TargetModel(nn.Module):
    """Embedder → body → head. See the module docstring for the methods."""

    def __init__(
        self,
        embedder: nn.Module,
        body: nn.Module,
        head: nn.Module,
        spec: BackboneSpec,
        input_shape: Sequence[int],
        output_shape: Sequence[int] | int,
        task: str,
    ):
        super().__init__()
        self.embedder = embedder
        self.body = body
        self.head = head
        self.spec = spec
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output_shape = (int(output_shape),) if isinstance(output_shape, int) else tuple(output_shape)
        self.task = task  # "dense" | "point"
        # identity standardisation until set_standardization is called
        for name, v in (("x_shift", 0.0), ("x_scale", 1.0), ("y_shift", 0.0), ("y_scale", 1.0)):
            self.register_buffer(name, torch.tensor(v))
        self.standardized = False

    def set_standardization(self, stats: dict[str, torch.Tensor]) -> "TargetModel":
        """Install shift/scale buffers (see :func:`standardization_stats`); returns ``self``."""
        for name in ("x_shift", "x_scale", "y_shift", "y_scale"):
            setattr(self, name, stats[name].to(self.x_shift.device))
        self.standardized = True
        return self

    def _in(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.x_shift) / self.x_scale if self.standardized else x

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        return self.y_shift + self.y_scale * y if self.standardized else y

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def num_tokens(self) -> int:
        return int(self.embedder.num_tokens)

    @property
    def stride(self) -> int | None:
        return getattr(self.embedder, "stride", None)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The embedder's token sequence, ``(B, T, embed_dim)`` (of the standardised input)."""
        return self.embedder(self._in(x))

    def pooled_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """Token-mean of the embedder output, ``(B, embed_dim)`` (what FA aligns)."""
        return self.embed(x).mean(dim=1)

    def body_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the body on a token tensor; returns the last hidden tokens ``(B, T', hidden_dim)``."""
        return self.body(tokens)

    def token_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden state per token, ``(B, T', hidden_dim)``."""
        return self.body(self.embed(x))

    def body_features(self, x: torch.Tensor) -> torch.Tensor:
        """Token-mean of the last hidden state, ``(B, hidden_dim)``."""
        return self.token_features(x).mean(dim=1)

    def predict_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        """Predictions from :meth:`token_features` output (reuses one body pass)."""
        return self._out(self.head(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._out(self.head(self.token_features(x)))

    def embedder_parameters(self) -> Iterator[nn.Parameter]:
        return self.embedder.parameters()

    def body_parameters(self) -> Iterator[nn.Parameter]:
        return self.body.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return self.head.parameters()


def _point_output(output_shape: Sequence[int] | int) -> int | None:
    if isinstance(output_shape, int):
        return int(output_shape)
    shape = tuple(output_shape)
    return int(shape[0]) if len(shape) == 1 else None


def build_target_model(
    backbone: str | os.PathLike | Backbone,
    input_shape: Sequence[int],
    output_shape: Sequence[int] | int,
    target_seq_len: int | None = None,
    embedder_init: str = "recraft",
    align: bool = True,
    *,
    stride: int | None = None,
    backbone_path: str | os.PathLike | None = None,
    dropout: float | None = None,
    dense_head_1d: str = "pooler",
    embedder_bias: float = 0.0,
) -> TargetModel:
    """Build a target model for one task.

    Args:
        backbone: a preset name / local path (loaded with :func:`recraft.backbones.load_backbone`),
            or an already loaded :class:`Backbone`, whose body then becomes part of this model
            (load a fresh one per model).
        input_shape: per-sample input shape without batch: ``(C, L)`` (1D) or ``(C, H, W)`` (2D).
        output_shape: ``(C_out, L_out)`` / ``(C_out, H', W')`` for dense outputs, or an int (or
            1-tuple) ``n_out`` for the point head.
        target_seq_len: 1D only, the most tokens (spec §1.2); default: the body's ``max_tokens``.
        embedder_init: ``"recraft"`` (Xavier conv) or ``"orca"`` (2D: copy the pretrained patch conv).
            1D embedders have one init (the 1D conv is Xavier in both repos).
        align: whether the alignment stage will run; ``False`` selects the NFT init branch.
        stride: 1D only, force the stride (e.g. 2 for the reference's Burgers behaviour).
        backbone_path: explicit weights location for a preset (``load_backbone(path=...)``).
        dropout: override the body's dropout / drop-path rate (default: the checkpoint's).
        dense_head_1d: ``"pooler"`` (the reference's parameter-free head) or ``"linear"``
            (:class:`~recraft.heads.LinearHead1D`); 1D dense outputs only.
        embedder_bias: when > 0, the embedder conv's bias is drawn from U(-b, b) instead of the
            reference's zeros. The embedder LayerNorms each token; with a zero bias a stride-1
            token ``u * w`` normalises to ``sign(u) * w / |w|``, so every amplitude is lost until
            the bias has been learned. A nonzero bias keeps amplitudes from the first step.
    """
    if dense_head_1d not in DENSE_HEADS_1D:
        raise ValueError(f"dense_head_1d must be one of {DENSE_HEADS_1D}, got {dense_head_1d!r}")
    if embedder_init not in ("recraft", "orca"):
        raise ValueError(f"embedder_init must be 'recraft' or 'orca', got {embedder_init!r}")
    bb = backbone if isinstance(backbone, Backbone) else load_backbone(backbone, path=backbone_path, dropout=dropout)
    spec = bb.spec
    input_shape = tuple(int(s) for s in input_shape)
    n_point = _point_output(output_shape)

    if len(input_shape) == 2:
        if spec.kind != "1d":
            raise ValueError(f"input shape {input_shape} is 1D but backbone {spec.name!r} is {spec.kind}")
        c, length = input_shape
        if stride is None:
            stride = stride_for(length, target_seq_len if target_seq_len is not None else spec.max_tokens)
        elif length % stride:
            raise ValueError(f"stride {stride} does not divide input length {length}")
        table = bb.input_embedding.position_embeddings
        emb = Embedder1D(c, length, spec.hidden_dim, stride, num_positions=table.num_embeddings,
                         position_offset=spec.position_offset)
        init_embedder_1d(emb, bb.input_embedding, align=align)
        if n_point is not None:
            head: nn.Module = PointHead(spec.hidden_dim, n_point)
            task = "point"
        else:
            out = tuple(int(s) for s in output_shape)
            if len(out) != 2:
                raise ValueError(f"1D dense output shape must be (C_out, L_out), got {out}")
            head = (DensePooler1D(emb.num_tokens, out[0], out[1]) if dense_head_1d == "pooler"
                    else LinearHead1D(spec.hidden_dim, emb.num_tokens, out[0], out[1]))
            task = "dense"
    elif len(input_shape) == 3:
        if spec.kind != "2d":
            raise ValueError(f"input shape {input_shape} is 2D but backbone {spec.name!r} is {spec.kind}")
        c = input_shape[0]
        emb = Embedder2D(c, spec.image_size, spec.patch_size, spec.embed_dim)
        init_embedder_2d(emb, bb.input_embedding, init=embedder_init, align=align)
        if n_point is not None:
            head = PointHead(spec.hidden_dim, n_point)
            task = "point"
        else:
            out = tuple(int(s) for s in output_shape)
            if len(out) != 3:
                raise ValueError(f"2D dense output shape must be (C_out, H', W'), got {out}")
            head = DenseDecoder2D(spec.hidden_dim, spec.final_grid, spec.image_size, out[0], (out[1], out[2]))
            task = "dense"
    else:
        raise ValueError(f"input shape must be (C, L) or (C, H, W), got {input_shape}")
    if embedder_bias > 0:
        with torch.no_grad():
            emb.conv.bias.uniform_(-float(embedder_bias), float(embedder_bias))

    return TargetModel(emb, bb.body, head, spec, input_shape, output_shape, task)
