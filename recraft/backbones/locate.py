"""Where a body's weights are on this machine: presets' sources, local folders, the Hugging Face
and torch hub caches, and the :class:`BackboneNotFound` message naming every place searched.

Nothing here reaches the network. A caller points at weights by passing ``path=`` to
:func:`recraft.backbones.load_backbone` (``backbone_path=`` of :func:`recraft.model.build_model`),
by a folder ``$RECRAFT_BACKBONE_DIR/<preset name>/``, or through the local Hugging Face cache.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

import torch

#: Environment variable naming a folder of backbones: ``$RECRAFT_BACKBONE_DIR/<preset name>/``.
ENV_BACKBONE_DIR = "RECRAFT_BACKBONE_DIR"

PRESETS = ("roberta-tiny", "minilm", "roberta-base", "swin-tiny-random", "swin-base")

# Hugging Face repos searched (local cache only) for the presets with pretrained weights.
_ROBERTA_BASE_REPOS = ("FacebookAI/roberta-base", "roberta-base")
_SWIN_BASE_ARCH = "swin_base_patch4_window7_224.ms_in22k"
_SWIN_BASE_REPOS = (
    "timm/swin_base_patch4_window7_224.ms_in22k",
    "timm/swin_base_patch4_window7_224.ms_in22k_ft_in1k",
)
_SWIN_BASE_TORCH_HUB_FILES = ("swin_base_patch4_window7_224_22k.pth",)
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pth", "pytorch_model.pth")


class BackboneNotFound(Exception):
    """Weights for a backbone are not on this machine. The message says where we looked and what to do."""


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Set the offline switches of huggingface_hub/transformers for the duration of a load."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    old = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Deterministic random init without touching the caller's RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _repo_folder(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")


def _cached_snapshot(repo_id: str, needs: tuple[str, ...]) -> Path | None:
    """A snapshot folder of ``repo_id`` in the local HF cache holding one of ``needs``; no network."""
    root = hf_cache_dir() / _repo_folder(repo_id)
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return None
    candidates = []
    ref = root / "refs" / "main"
    if ref.is_file():
        candidates.append(snaps / ref.read_text().strip())
    candidates += sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for snap in candidates:
        if snap.is_dir() and any((snap / n).exists() for n in needs):
            return snap
    return None


def _backbone_dir_candidate(name: str) -> Path | None:
    root = os.environ.get(ENV_BACKBONE_DIR)
    return Path(root).expanduser() / name if root else None


def _not_found(name: str, looked: list[str], how: str) -> BackboneNotFound:
    lines = [f"backbone {name!r}: no weights found on this machine (nothing is downloaded at run time).",
             "Looked in:"]
    lines += [f"  - {p}" for p in looked]
    lines += ["How to provide them:", how]
    return BackboneNotFound("\n".join(lines))


def _how_1d(repo: str, name: str) -> str:
    return (
        f"  * on a machine with network: `python -c \"from transformers import AutoModel, AutoTokenizer; "
        f"AutoModel.from_pretrained('{repo}').save_pretrained('DIR'); "
        f"AutoTokenizer.from_pretrained('{repo}').save_pretrained('DIR')\"`, copy DIR here as ${ENV_BACKBONE_DIR}/{name} (set "
        f"{ENV_BACKBONE_DIR} where the trials run: on a cluster, before `ray start` on every node), "
        f"or from Python pass it as `load_backbone({name!r}, path='DIR')`;\n"
        f"  * or copy that machine's Hugging Face cache folder {_repo_folder(repo)} into {hf_cache_dir()} "
        f"(or point HF_HOME / HF_HUB_CACHE at a cache that has it)."
    )


def _how_swin_base() -> str:
    return (
        "  * on a machine with network: `python -c \"import timm, safetensors.torch as st; "
        f"m = timm.create_model('{_SWIN_BASE_ARCH}', pretrained=True); "
        "st.save_file(m.state_dict(), 'swin_base_in22k.safetensors')\"` (or download model.safetensors of the "
        "Hugging Face repo timm/swin_base_patch4_window7_224.ms_in22k), copy the file into "
        f"${ENV_BACKBONE_DIR}/swin-base/ (set {ENV_BACKBONE_DIR} where the trials run: on a cluster, "
        "before `ray start` on every node), or from Python pass it as "
        "`load_backbone('swin-base', path='FILE')`;\n"
        f"  * or copy that machine's Hugging Face cache folder {_repo_folder(_SWIN_BASE_REPOS[0])} into "
        f"{hf_cache_dir()} (or point HF_HOME / HF_HUB_CACHE at a cache that has it)."
    )


def _is_hf_dir(p: Path) -> bool:
    if not (p / "config.json").is_file():
        return False
    try:
        cfg = json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return "model_type" in cfg


def _find_1d(name: str, repos: tuple[str, ...], path: Path | None) -> tuple[Path | None, str, list[str]]:
    """(transformers folder or None, its source label, places looked) for a 1D body; loads nothing."""
    looked: list[str] = []
    if path is not None:
        looked.append(f"{path} (the path given)")
        if _is_hf_dir(path):
            return path, str(path), looked
    env_dir = _backbone_dir_candidate(name)
    if env_dir is not None:
        looked.append(f"{env_dir} (${ENV_BACKBONE_DIR}/{name})")
        if _is_hf_dir(env_dir):
            return env_dir, str(env_dir), looked
    else:
        looked.append(f"${ENV_BACKBONE_DIR}/{name} (${ENV_BACKBONE_DIR} is not set)")
    for repo in repos:
        snap = _cached_snapshot(repo, ("config.json",))
        looked.append(f"{hf_cache_dir() / _repo_folder(repo)} (Hugging Face cache, repo {repo})")
        if snap is not None and _is_hf_dir(snap):
            return snap, f"{snap} (HF cache {repo})", looked
    return None, "", looked


def _weights_in(directory: Path) -> Path | None:
    for n in _WEIGHT_FILES:
        if (directory / n).is_file():
            return directory / n
    pths = sorted(directory.glob("*.pth")) + sorted(directory.glob("*.safetensors"))
    return pths[0] if pths else None


def find_swin_base_weights(path: str | os.PathLike | None = None) -> tuple[Path | None, list[str]]:
    """Locate Swin-B in22k weights without any network access.

    Returns ``(file or None, places looked)``. The search order is: ``path`` (a file, or a folder
    holding ``model.safetensors``/``pytorch_model.bin``/``*.pth``), ``$RECRAFT_BACKBONE_DIR/swin-base``,
    the HF cache folders of ``timm/swin_base_patch4_window7_224.ms_in22k`` (then ``.ms_in22k_ft_in1k``,
    whose body is the same 22k-pretrained body fine-tuned on 1k), and torch hub's checkpoint folder.
    """
    looked: list[str] = []
    cands: list[tuple[Path, str]] = []
    if path is not None:
        cands.append((Path(path).expanduser(), "the path given"))
    env_dir = _backbone_dir_candidate("swin-base")
    if env_dir is not None:
        cands.append((env_dir, f"${ENV_BACKBONE_DIR}/swin-base"))
    else:
        looked.append(f"${ENV_BACKBONE_DIR}/swin-base (${ENV_BACKBONE_DIR} is not set)")
    for p, why in cands:
        looked.append(f"{p} ({why})")
        if p.is_file():
            return p, looked
        if p.is_dir():
            w = _weights_in(p)
            if w is not None:
                return w, looked
    for repo in _SWIN_BASE_REPOS:
        looked.append(f"{hf_cache_dir() / _repo_folder(repo)} (Hugging Face cache, repo {repo})")
        snap = _cached_snapshot(repo, _WEIGHT_FILES)
        if snap is not None:
            w = _weights_in(snap)
            if w is not None:
                return w, looked
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser() / "hub" / "checkpoints"
    for fname in _SWIN_BASE_TORCH_HUB_FILES:
        looked.append(f"{hub / fname} (torch hub cache)")
        if (hub / fname).is_file():
            return hub / fname, looked
    return None, looked
