"""A content-keyed artifact cache for expensive, deterministic products (e.g. the source side).

``content_key(**parts)`` hashes a JSON-normalised description of *what* was computed (backbone,
proxy, n, ε, mode, seed, code version, ...). ``ArtifactCache(root).get_or_create(key, builder, kind)``
returns the stored payload when a valid entry exists, and otherwise calls ``builder()`` and stores
its result.

Layout: ``root/<key[:2]>/<key>.<ext>`` (the payload) and ``root/<key[:2]>/<key>.<ext>.meta.json``
(the sidecar: kind, size and sha256 of the payload bytes). Writes are atomic: payload to a temp file
in the same folder, ``fsync``, ``os.replace``; then the sidecar the same way, then the folder is
fsynced. The sidecar is written last, so an entry counts only when both exist and the payload's size
and sha256 match the sidecar. A corrupt payload, a missing or unreadable sidecar, or a payload that
fails to deserialise is logged, counted (``corrupt``) and rebuilt, never returned. A half-written
entry (only a temp file) is simply not an entry: it is a miss and its temp files are removed.

Concurrent processes (e.g. Ray trials on one node, or a shared folder) serialise on a per-key
``flock`` where the platform offers one, so a key is built once and the others then hit.

Kinds: ``"torch"`` (``torch.save``; loaded with ``weights_only=True``, so payloads are tensors,
numbers, strings, lists, tuples and dicts), ``"numpy"`` (an array → ``.npy``, a dict of arrays →
``.npz``; no pickle), ``"json"``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import io
import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path, PurePath
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["content_key", "normalise", "ArtifactCache", "CacheError"]

log = logging.getLogger(__name__)

_EXT = {"torch": "pt", "numpy": "npy", "npz": "npz", "json": "json"}
FORMAT_VERSION = 1


class CacheError(Exception):
    """An entry could not be stored or read (not raised for corrupt entries, which are rebuilt)."""


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------


def _array_digest(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    return {"__array__": hashlib.sha256(a.tobytes()).hexdigest(), "shape": list(a.shape), "dtype": str(a.dtype)}


def normalise(obj: Any) -> Any:
    """A JSON-ready, order-independent form of ``obj`` used for keys.

    Dict keys are sorted (by ``json.dumps``), tuples become lists, paths become POSIX strings,
    integral floats become ints (so ``1`` and ``1.0`` give one key), non-finite floats become strings,
    numpy/torch scalars become Python numbers, arrays and tensors are replaced by a sha256 of their
    bytes plus shape and dtype, dataclasses become dicts, enums their value. Anything else is refused
    (``TypeError``) rather than keyed by an unstable ``str()``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return normalise(obj.value)
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if not math.isfinite(f):
            return repr(f)
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                k = json.dumps(normalise(k), sort_keys=True)
            out[k] = normalise(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [normalise(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((normalise(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, np.ndarray):
        return _array_digest(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return normalise(dataclasses.asdict(obj))
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return _array_digest(obj.detach().cpu().numpy())
        if isinstance(obj, (torch.dtype, torch.device)):
            return str(obj)
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"cannot build a stable cache key from {type(obj).__name__}: {obj!r}")


def content_key(**parts: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``parts``; stable across processes and machines."""
    blob = json.dumps(normalise(parts), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------------


def _dumps(payload: Any, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "torch":
        import torch

        torch.save(payload, buf)
    elif kind == "numpy":
        np.save(buf, np.asarray(payload), allow_pickle=False)
    elif kind == "npz":
        np.savez(buf, **{k: np.asarray(v) for k, v in payload.items()})
    elif kind == "json":
        buf.write(json.dumps(payload, sort_keys=True, indent=1).encode("utf-8"))
    else:  # pragma: no cover - checked earlier
        raise CacheError(f"unknown kind {kind!r}")
    return buf.getvalue()


def _loads(data: bytes, kind: str) -> Any:
    buf = io.BytesIO(data)
    if kind == "torch":
        import torch

        return torch.load(buf, map_location="cpu", weights_only=True)
    if kind == "numpy":
        return np.load(buf, allow_pickle=False)
    if kind == "npz":
        with np.load(buf, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if kind == "json":
        return json.loads(data.decode("utf-8"))
    raise CacheError(f"unknown kind {kind!r}")  # pragma: no cover


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(str(d), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------


class ArtifactCache:
    """Content-keyed, checksummed, atomically written artifacts under ``root``.

    Counters: ``hits`` (valid entry returned), ``misses`` (builder called), ``corrupt`` (an existing
    entry failed validation and was rebuilt; such a call also counts as a miss).
    """

    def __init__(self, root: str | os.PathLike, *, lock: bool = True):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = lock
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    # paths ---------------------------------------------------------------------------------------
    def payload_path(self, key: str, kind: str = "torch") -> Path:
        if kind not in _EXT:
            raise CacheError(f"unknown artifact kind {kind!r}; use one of {sorted(_EXT)}")
        if not key or any(c not in "0123456789abcdefABCDEF-_" for c in key):
            raise CacheError(f"cache keys are hex strings from content_key(), got {key!r}")
        return self.root / key[:2] / f"{key}.{_EXT[kind]}"

    def sidecar_path(self, key: str, kind: str = "torch") -> Path:
        p = self.payload_path(key, kind)
        return p.with_name(p.name + ".meta.json")

    # validation ----------------------------------------------------------------------------------
    def _read_valid(self, key: str, kind: str) -> tuple[bool, Any, str]:
        """(found_valid, payload, why_invalid). why is '' when there is no entry at all."""
        p, s = self.payload_path(key, kind), self.sidecar_path(key, kind)
        if not p.exists() and not s.exists():
            return False, None, ""
        if not s.exists():
            return False, None, "payload without sidecar (interrupted write)"
        if not p.exists():
            return False, None, "sidecar without payload"
        try:
            meta = json.loads(s.read_text())
            data = p.read_bytes()
        except (OSError, ValueError) as e:
            return False, None, f"unreadable entry: {e}"
        if meta.get("key") != key or meta.get("kind") != kind:
            return False, None, "sidecar names another key/kind"
        if meta.get("size") != len(data) or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            return False, None, "checksum mismatch"
        try:
            return True, _loads(data, kind), ""
        except Exception as e:  # noqa: BLE001 - any decode failure means rebuild
            return False, None, f"payload does not deserialise: {e}"

    def exists(self, key: str, kind: str = "torch") -> bool:
        """Whether a valid entry exists (reads and checks it; does not touch the counters)."""
        return self._read_valid(key, kind)[0]

    def load(self, key: str, kind: str = "torch") -> Any:
        """The stored payload; ``KeyError`` when there is no valid entry. Counts a hit."""
        ok, payload, why = self._read_valid(key, kind)
        if not ok:
            raise KeyError(f"{key} ({kind}): {why or 'not cached'}")
        self.hits += 1
        return payload

    def store(self, key: str, payload: Any, kind: str = "torch", *, meta: dict[str, Any] | None = None) -> Path:
        """Write ``payload`` atomically (payload, then sidecar); returns the payload path."""
        data = _dumps(payload, kind)
        p, s = self.payload_path(key, kind), self.sidecar_path(key, kind)
        _atomic_write(p, data)
        side = {
            "key": key,
            "kind": kind,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "format": FORMAT_VERSION,
            "created_unix": time.time(),
            "meta": normalise(meta or {}),
        }
        _atomic_write(s, json.dumps(side, indent=1, sort_keys=True).encode("utf-8"))
        _fsync_dir(p.parent)
        return p

    def _remove_entry(self, key: str, kind: str) -> None:
        p = self.payload_path(key, kind)
        for f in (self.sidecar_path(key, kind), p):
            with contextlib.suppress(OSError):
                f.unlink()
        if p.parent.is_dir():
            for tmp in p.parent.glob(f".{key}.*.tmp"):
                with contextlib.suppress(OSError):
                    tmp.unlink()

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        if not self.lock:
            yield
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        d = self.root / key[:2]
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f".{key}.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def get_or_create(self, key: str, builder: Callable[[], Any], kind: str = "torch", *,
                      meta: dict[str, Any] | None = None) -> Any:
        """Return the cached payload for ``key``, building and storing it with ``builder()`` if needed.

        The returned object on a miss is the freshly built one (not a re-read copy).
        """
        self.payload_path(key, kind)  # validates key and kind early
        ok, payload, _ = self._read_valid(key, kind)
        if ok:
            self.hits += 1
            return payload
        with self._locked(key):
            ok, payload, why = self._read_valid(key, kind)  # another process may have built it
            if ok:
                self.hits += 1
                return payload
            if why:
                self.corrupt += 1
                log.warning("cache entry %s (%s) is invalid (%s); rebuilding it", key, kind, why)
            self._remove_entry(key, kind)
            self.misses += 1
            payload = builder()
            self.store(key, payload, kind, meta=meta)
            return payload

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "corrupt": self.corrupt}
