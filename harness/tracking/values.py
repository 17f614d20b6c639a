"""Configs, keys, params and metric values as MLflow accepts them."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from typing import Any, Iterator, Mapping, TypeVar
from harness.tracking.names import MAX_KEY_LEN


T = TypeVar("T")


_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def _clean_key(key: Any) -> str:
    """A key MLflow accepts: allowed characters only, no empty/./.. path parts, <= 250 chars."""
    k = _BAD_KEY_CHARS.sub("_", str(key))
    parts = [p for p in k.split("/") if p not in ("", ".", "..")]
    k = "/".join(parts) or "_"
    return k[:MAX_KEY_LEN]


def _to_plain(obj: Any) -> Any:
    """Convert a config to plain YAML/JSON types (dicts, lists, str, int, float, bool, None)."""
    if isinstance(obj, Mapping):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [_to_plain(v) for v in items]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _to_plain(item())
        except Exception:  # noqa: BLE001 - not a scalar (e.g. an array)
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return _to_plain(tolist())
    return str(obj)


def flatten(config: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"align": {"epsilon": 0.1}}`` -> ``{"align.epsilon": 0.1}``. Non-dict leaves are kept
    as they are; an empty dict becomes one ``{}`` leaf."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def _param_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    plain = _to_plain(value)
    if isinstance(plain, (list, dict)):
        return json.dumps(plain, sort_keys=False, default=str)
    return str(plain)


def _content_hash(obj: Any, length: int = 12) -> str:
    blob = json.dumps(_to_plain(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _metric_value(v: Any) -> float | None:
    """A float for MLflow, NaN for any non-finite number, None for something that is not a number."""
    if not isinstance(v, (bool, int, float)):
        item = getattr(v, "item", None)  # numpy / torch scalars (and one-element arrays)
        if not callable(item):
            return None
        try:
            v = item()
        except Exception:  # noqa: BLE001 - an array with more than one element
            return None
        if not isinstance(v, (bool, int, float)):
            return None
    f = float(v)
    return f if math.isfinite(f) else math.nan


def _filter_quote(value: str) -> str:
    """Quote a string for an MLflow search filter (MLflow's parser has no escapes)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"run key {value!r} contains both quote characters; MLflow cannot search for it")
