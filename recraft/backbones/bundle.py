"""A loaded body: what it is (:class:`BackboneSpec`), the body and the input layer taken out of it
(:class:`Backbone`), and the two body wrappers that take the task embedder's tokens."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..grid import tokens_to_grid


@dataclass(frozen=True)
class BackboneSpec:
    """What callers need to size embedders and heads.

    Attributes:
        name: the preset name or path as given to :func:`load_backbone`.
        kind: ``"1d"`` (RoBERTa/BERT family) or ``"2d"`` (Swin).
        hidden_dim: width of the body's output tokens (1D: hidden size; 2D: last-stage width,
            e.g. 1024 for Swin-B).
        embed_dim: width of the token sequence the body consumes (1D: hidden size; 2D: the patch
            embedding width, e.g. 128 for Swin-B). The source features (spec §2) have this width.
        max_tokens: most tokens the body accepts (1D: position-table rows minus the offset;
            2D: the patch grid, ``(image_size / patch_size)**2``).
        image_size: 2D only, the square input resolution of the body.
        patch_size: 2D only, the patch-embedding kernel/stride.
        final_grid: 2D only, (h, w) of the last stage's feature map.
        position_offset: 1D only, the first position id (2 for RoBERTa's ``padding_idx=1``; 0 for BERT).
        pretrained: whether weights came from a checkpoint (False for the random presets).
        source: where the weights came from (a path), or ``"random-init (seed 0)"``.
        model_type: ``"roberta"``, ``"bert"``, ``"swin"``, ...
        architecture: the model class / timm architecture name.
        vocab_size, pad_token_id, cls_token_id, sep_token_id: 1D only, tokenizer-side facts.
    """

    name: str
    kind: str
    hidden_dim: int
    embed_dim: int
    max_tokens: int
    image_size: int | None = None
    patch_size: int | None = None
    final_grid: tuple[int, int] | None = None
    position_offset: int = 0
    pretrained: bool = False
    source: str = ""
    model_type: str = ""
    architecture: str = ""
    vocab_size: int | None = None
    pad_token_id: int | None = None
    cls_token_id: int | None = None
    sep_token_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if d["final_grid"] is not None:
            d["final_grid"] = list(d["final_grid"])
        return d


@dataclass
class Backbone:
    """A loaded body plus the pieces taken out of it.

    ``body`` maps a token tensor ``(B, T, embed_dim)`` to the last hidden tokens ``(B, T', hidden_dim)``.
    ``input_embedding`` is the body's own input layer (``RobertaEmbeddings``/``BertEmbeddings`` or
    timm's ``PatchEmbed``), detached from the body: the source side uses it (spec §2) and the task
    embedders copy their initialisation from it (spec §1.2, §1.3).
    """

    spec: BackboneSpec
    body: nn.Module
    input_embedding: nn.Module
    tokenizer: Any | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to(self, device: torch.device | str) -> "Backbone":
        self.body.to(device)
        self.input_embedding.to(device)
        return self

    def eval(self) -> "Backbone":
        self.body.eval()
        self.input_embedding.eval()
        return self

    def freeze(self) -> "Backbone":
        for p in list(self.body.parameters()) + list(self.input_embedding.parameters()):
            p.requires_grad_(False)
        return self

    @torch.no_grad()
    def input_tokens(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of the body's own (pretrained) input layer: what the source side measures.

        1D: ``inputs`` are token ids ``(B, T)``; returns the embedding-module output
        (word + position [+ token type] embeddings, LayerNorm), ``(B, T, hidden)``.
        2D: ``inputs`` are images ``(B, 3, H, W)``, bilinearly resized to the body's image size;
        returns the patch-embedding output (conv + norm) flattened to ``(B, N, embed_dim)``.
        """
        if self.spec.kind == "1d":
            return self.input_embedding(input_ids=inputs)
        x = _resize(inputs, self.spec.image_size)
        z = self.input_embedding(x)  # NHWC
        return z.flatten(1, 2)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    return nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class _PassThroughEmbeddings(nn.Module):
    """Stands in for a transformers embedding module: returns ``inputs_embeds`` untouched."""

    def forward(self, input_ids=None, inputs_embeds=None, **_: Any) -> torch.Tensor:  # noqa: D401
        if inputs_embeds is None:
            raise ValueError("this body's embedding layer is bypassed: pass inputs_embeds (the embedder's tokens)")
        return inputs_embeds


class Body1D(nn.Module):
    """A transformers encoder whose embedding module is a pass-through (spec §1.2).

    ``forward(tokens, attention_mask=None)`` runs the encoder on ``tokens`` ``(B, T, H)`` and returns
    the last hidden state ``(B, T, H)``. No attention mask means every token attends (the target
    models never pass one); the source side passes one for padded sentences. The pooler is dropped.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        hf_model.embeddings = _PassThroughEmbeddings()
        if getattr(hf_model, "pooler", None) is not None:
            hf_model.pooler = None
        self.model = hf_model
        self.hidden_dim = int(hf_model.config.hidden_size)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model(inputs_embeds=tokens, attention_mask=attention_mask)
        return out.last_hidden_state


class Body2D(nn.Module):
    """The stages and final norm of a timm Swin; the patch embedding is taken out (spec §1.3).

    ``forward(tokens)`` takes ``(B, N, D)`` tokens on the patch grid (row-major, ``N = gh * gw``) or an
    NHWC map ``(B, gh, gw, D)`` and returns the final-norm tokens ``(B, h * w, C)``.
    """

    def __init__(self, timm_model: nn.Module):
        super().__init__()
        self.layers = timm_model.layers
        self.norm = timm_model.norm
        self.grid = tuple(int(g) for g in timm_model.patch_embed.grid_size)
        self.hidden_dim = int(timm_model.num_features)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None:
            raise ValueError("Swin bodies take no attention mask")
        x = self.layers(tokens_to_grid(tokens, self.grid, "Swin body"))
        x = self.norm(x)
        return x.flatten(1, 2)
