"""NAS-Bench-360 downloads through the shared downloader: pinned md5s, unpacking, Cosmic lists."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest

from harness.data.errors import DataError, DownloadError, UnsafePath
from harness.data.nb360 import download as nbdl
from harness.data.nb360.catalog import DATASETS, MD5_TORCHVISION, RemoteFile
from harness.suites import get_suite
from test_download import Server

pytestmark = pytest.mark.timeout(60)
FAST = dict(timeout=5, retries=1, backoff=0)


@pytest.fixture
def server():
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def test_catalog_says_which_checksums_are_published():
    published = {rf.rel_path for spec in DATASETS.values() for rf in spec.downloads if rf.md5}
    assert published == {"cifar-100-python.tar.gz"}
    cifar = DATASETS["cifar100"].downloads[0]
    assert cifar.md5 == "eb9058c3a382ffc7106e4002c42a8d85" and cifar.md5_source == MD5_TORCHVISION
    for spec in DATASETS.values():
        for rf in spec.downloads:
            assert rf.url.startswith("https://") and (rf.md5 or rf.md5_source.startswith("none"))


def test_unpublished_md5_is_pinned_then_enforced(server, tmp_path, monkeypatch):
    buf = io.BytesIO()
    np.save(buf, {"data": np.zeros((3, 46), np.float32), "label": np.arange(1, 4)})
    body = buf.getvalue()
    for name in ("satellite_train.npy", "satellite_test.npy"):
        server.add(f"/m/{name}", body)
    spec = DATASETS["satellite"]
    small = dataclasses.replace(spec, downloads=tuple(
        dataclasses.replace(rf, approx_mb=len(body) / 1e6) for rf in spec.downloads))
    monkeypatch.setitem(DATASETS, "satellite", small)
    lines = []
    nbdl.download_tasks(tmp_path, ["satellite"], base_url=server.base + "/m", progress=lines.append, **FAST)
    pins = json.loads((tmp_path / nbdl.PINS).read_text())
    assert pins["satellite_train.npy"]["md5"] == hashlib.md5(body).hexdigest()
    assert any("pinned" in line for line in lines)
    assert get_suite("nasbench360")["satellite"].load(tmp_path).source == "real"
    # the file changes on disk: check --verify reports it against the pin
    (tmp_path / "satellite_test.npy").write_bytes(body[:-1] + b"\x00")
    problems = nbdl.verify_files(small, tmp_path)
    assert len(problems) == 1 and "satellite_test.npy" in problems[0] and "pinned" in problems[0]


def test_implausible_size_without_checksum_is_kept_aside(server, tmp_path):
    server.add("/m/x.npy", b"tiny")
    rf = RemoteFile("unused", "x.npy", approx_mb=50.0)
    with pytest.raises(DownloadError, match="got 4 bytes, expected about 50.0 MB"):
        nbdl._one(rf, tmp_path, server.base + "/m", None, False, **FAST)
    assert (tmp_path / "x.npy.bad-size-4").is_file() and not (tmp_path / "x.npy").exists()


def test_tar_and_zip_are_unpacked_safely(tmp_path):
    tar_path = tmp_path / "a.tar"
    with tarfile.open(tar_path, "w") as tf:
        data = b"hello"
        info = tarfile.TarInfo("inner/file.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    nbdl._unpack(tar_path, RemoteFile("u", "a.tar", 1, unpack="tar", unpack_to="out"), tmp_path, None)
    assert (tmp_path / "out/inner/file.txt").read_bytes() == b"hello"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", b"x")
    with pytest.raises(UnsafePath):
        nbdl._unpack(evil, RemoteFile("u", "evil.zip", 1, unpack="zip", unpack_to="z"), tmp_path, None)
    assert not (tmp_path / "escape.txt").exists()


def test_cosmic_lists_keep_galaxy_fields_sorted(tmp_path):
    for split in ("train", "test"):
        for field, names in (("10760/2", ["2_b.npy", "1_a.npy", "sky.npy"]),   # GAL
                             ("10595/2", ["1_c.npy"])):                         # GC: left out
            d = tmp_path / "cosmic" / f"npy_{split}" / "f435w" / field
            d.mkdir(parents=True)
            for n in names:
                np.save(d / n, np.zeros(1))
    assert nbdl.cosmic_lists(tmp_path) == {"train": 2, "test": 2}
    got = np.load(tmp_path / "cosmic/train_dirs.npy").tolist()
    assert got == ["./cosmic/npy_train/f435w/10760/2/1_a.npy",
                   "./cosmic/npy_train/f435w/10760/2/2_b.npy"]


def test_synthetic_root_is_refused(tmp_path):
    from harness.data.nb360 import synth

    synth.generate("ecg", tmp_path, size="tiny")
    with pytest.raises(DataError, match="holds synthetic data for 'ecg'"):
        nbdl.download_tasks(tmp_path, ["ecg"], progress=None)
