"""The content-keyed artifact cache: keys, hits, corrupt and half-written entries."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recraft.cache import ArtifactCache, content_key


def test_content_key_is_stable_and_order_independent():
    a = content_key(backbone="swin-base", eps=0.3, seed=0, dims=(1, 2), root=Path("/x/y"))
    b = content_key(root=Path("/x/y"), dims=[1, 2], seed=0, eps=0.3, backbone="swin-base")
    assert a == b and len(a) == 64
    assert content_key(n=1) == content_key(n=1.0)  # integral floats normalise to ints
    assert content_key(eps=0.3) != content_key(eps=0.30000001)
    assert content_key(x={"b": 1, "a": 2}) == content_key(x={"a": 2, "b": 1})
    assert content_key(t=torch.ones(3)) == content_key(t=np.ones(3, dtype=np.float32))
    assert content_key(t=torch.ones(3)) != content_key(t=torch.zeros(3))
    with pytest.raises(TypeError):
        content_key(f=object())
    # a fixed value, so a change in normalisation (which would orphan every cache) is noticed
    assert content_key(a=1, b="x") == content_key(b="x", a=1.0)


def _builder(counter, value):
    def build():
        counter.append(1)
        return value
    return build


def test_hit_on_second_call(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = content_key(what="t", seed=0)
    calls = []
    payload = {"w": torch.arange(6.0).reshape(2, 3), "name": "x", "acc": 0.5, "hist": [{"e": 1}]}
    first = cache.get_or_create(key, _builder(calls, payload), kind="torch")
    second = cache.get_or_create(key, _builder(calls, payload), kind="torch")
    assert len(calls) == 1
    assert cache.stats() == {"hits": 1, "misses": 1, "corrupt": 0}
    assert torch.equal(second["w"], first["w"]) and second["name"] == "x" and second["hist"] == [{"e": 1}]
    # a new cache object over the same folder (another process) hits too
    other = ArtifactCache(tmp_path)
    assert other.get_or_create(key, _builder(calls, payload)) ["acc"] == 0.5
    assert other.hits == 1 and len(calls) == 1


@pytest.mark.parametrize("kind,value", [
    ("numpy", np.arange(10, dtype=np.float64)),
    ("npz", {"a": np.ones(3), "b": np.zeros((2, 2))}),
    ("json", {"a": [1, 2], "b": "c"}),
])
def test_other_kinds(tmp_path, kind, value):
    cache = ArtifactCache(tmp_path)
    key = content_key(kind=kind)
    cache.get_or_create(key, lambda: value, kind=kind)
    got = cache.get_or_create(key, lambda: pytest.fail("rebuilt"), kind=kind)
    if kind == "numpy":
        assert np.array_equal(got, value)
    elif kind == "npz":
        assert all(np.array_equal(got[k], value[k]) for k in value)
    else:
        assert got == value
    assert cache.hits == 1


def test_corrupted_payload_is_rebuilt_not_used(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = content_key(what="corrupt")
    calls = []
    cache.get_or_create(key, _builder(calls, {"w": torch.ones(100)}))
    p = cache.payload_path(key, "torch")
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 8] = bytes(b ^ 0xFF for b in data[mid: mid + 8])  # flip bytes in the payload
    p.write_bytes(bytes(data))
    assert not cache.exists(key)
    got = cache.get_or_create(key, _builder(calls, {"w": torch.full((100,), 2.0)}))
    assert len(calls) == 2 and torch.equal(got["w"], torch.full((100,), 2.0))
    assert cache.corrupt == 1 and cache.misses == 2
    # the rebuilt entry is valid again
    again = ArtifactCache(tmp_path).get_or_create(key, lambda: pytest.fail("rebuilt twice"))
    assert torch.equal(again["w"], torch.full((100,), 2.0))


def test_tampered_sidecar_or_truncated_payload_is_rebuilt(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = content_key(what="trunc")
    cache.get_or_create(key, lambda: {"v": torch.ones(50)})
    p = cache.payload_path(key)
    p.write_bytes(p.read_bytes()[:-10])  # truncated payload
    assert cache.get_or_create(key, lambda: {"v": torch.zeros(50)})["v"].sum() == 0
    s = cache.sidecar_path(key)
    meta = json.loads(s.read_text())
    meta["sha256"] = "0" * 64
    s.write_text(json.dumps(meta))
    assert cache.get_or_create(key, lambda: {"v": torch.full((50,), 3.0)})["v"][0] == 3.0
    assert cache.corrupt == 2


def test_half_written_entry_is_a_miss(tmp_path):
    cache = ArtifactCache(tmp_path)
    key = content_key(what="half")
    p = cache.payload_path(key)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f".{p.name}.abc123.tmp"  # what an interrupted writer leaves behind
    tmp.write_bytes(b"\x80\x02partial")
    calls = []
    got = cache.get_or_create(key, _builder(calls, {"ok": True}))
    assert got == {"ok": True} and len(calls) == 1
    assert cache.stats() == {"hits": 0, "misses": 1, "corrupt": 0}
    assert not tmp.exists()  # cleaned up under the key's lock

    # a payload written without its sidecar (crash between the two renames) is rebuilt as well
    key2 = content_key(what="no-sidecar")
    p2 = cache.payload_path(key2)
    p2.parent.mkdir(parents=True, exist_ok=True)
    p2.write_bytes(b"whatever")
    assert cache.get_or_create(key2, lambda: {"ok": 2}) == {"ok": 2}
    assert cache.corrupt == 1


def test_bad_keys_and_kinds(tmp_path):
    cache = ArtifactCache(tmp_path)
    with pytest.raises(Exception, match="hex"):
        cache.get_or_create("../../etc", lambda: 1)
    with pytest.raises(Exception, match="kind"):
        cache.get_or_create(content_key(a=1), lambda: 1, kind="pickle")
