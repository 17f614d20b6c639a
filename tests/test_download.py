"""Tests for harness.data.download against a real HTTP server on 127.0.0.1.

The server (a ThreadingHTTPServer on port 0) serves in-memory bytes, honours ``Range: bytes=N-``
and can be told to misbehave per path: cut the body after K bytes, ignore Range, or answer with
an error status for the next few requests.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.data import catalog
from harness.data.download import (
    catalog_rows,
    download_file,
    download_tasks,
    md5sum,
    safe_destination,
)
from harness.data.errors import ChecksumMismatch, DataError, DownloadError, UnsafePath

pytestmark = pytest.mark.timeout(30)

DATA = random.Random(20240601).randbytes(300_000)
DATA_MD5 = hashlib.md5(DATA).hexdigest()
OTHER_MD5 = hashlib.md5(b"something else").hexdigest()
FAST = dict(timeout=5, retries=3, backoff=0, chunk=16 * 1024)


# --------------------------------------------------------------------------------------------------
# test server


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: dict[str, list[int]] = {}  # per path: K for the next requests, in order
        self.statuses: dict[str, list[int]] = {}  # per path: error codes for the next requests
        self.ignore_range: set[str] = set()
        self.wrong_content_range: set[str] = set()  # answer 206 but with the whole file
        self.redirects: dict[str, str] = {}  # path -> Location (302)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def do_GET(self):  # noqa: N802 - http.server naming
        state: _State = self.server.state  # type: ignore[attr-defined]
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        range_header = self.headers.get("Range")
        with state.lock:
            state.requests.append((path, range_header))
            queued = state.statuses.get(path)
            status = queued.pop(0) if queued else None
            cuts = state.cut_after.get(path)
            cut = cuts.pop(0) if cuts else None
            data = state.files.get(path)
            ignore_range = path in state.ignore_range
            wrong_range = path in state.wrong_content_range
            location = state.redirects.get(path)
        if location is not None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if status is not None:
            self.send_error(status)
            return
        if data is None:
            self.send_error(404)
            return
        start, code = 0, 200
        if range_header and not ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
            assert match, range_header
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            code = 206
            if wrong_range:
                start = 0
        body = data[start:]
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server:
    def __init__(self) -> None:
        self.state = _State()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, data: bytes) -> str:
        self.state.files[path] = data
        return self.base + urllib.parse.quote(path)

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        with self.state.lock:
            return list(self.state.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


# --------------------------------------------------------------------------------------------------
# md5sum


def test_md5sum_matches_hashlib_for_any_chunk(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(DATA)
    for chunk in (1, 7, 4096, 1 << 20):
        if chunk == 1:
            g = tmp_path / "small.bin"
            g.write_bytes(DATA[:100])
            assert md5sum(g, chunk) == hashlib.md5(DATA[:100]).hexdigest()
        else:
            assert md5sum(f, chunk) == DATA_MD5


# --------------------------------------------------------------------------------------------------
# download_file


def test_good_file(server, tmp_path):
    url = server.add("/good.bin", DATA)
    dest = tmp_path / "sub" / "good.bin"
    messages: list[str] = []
    out = download_file(url, dest, DATA_MD5, progress=messages.append, **FAST)
    assert out == dest
    assert dest.read_bytes() == DATA
    assert md5sum(dest) == DATA_MD5
    assert not dest.with_name("good.bin.part").exists()
    assert _tree(tmp_path) == ["sub", "sub/good.bin"]
    assert server.requests == [("/good.bin", None)]
    assert any("md5 ok" in m for m in messages)


def test_quiet_without_progress(server, tmp_path, capsys):
    url = server.add("/q.bin", DATA)
    download_file(url, tmp_path / "q.bin", DATA_MD5, progress=None, **FAST)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_existing_good_file_untouched(server, tmp_path):
    url = server.add("/good.bin", DATA)
    dest = tmp_path / "good.bin"
    dest.write_bytes(DATA)
    os.utime(dest, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = dest.stat()
    assert download_file(url, dest, DATA_MD5, **FAST) == dest
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == \
        (before.st_ino, before.st_mtime_ns, before.st_size)
    assert server.requests == []


def test_wrong_md5_keeps_bad_copy_aside(server, tmp_path):
    url = server.add("/data.bin", DATA)
    dest = tmp_path / "data.bin"
    with pytest.raises(ChecksumMismatch) as info:
        download_file(url, dest, OTHER_MD5, **FAST)
    msg = str(info.value)
    bad = tmp_path / f"data.bin.bad-md5-{DATA_MD5}"
    assert OTHER_MD5 in msg and DATA_MD5 in msg
    assert str(bad) in msg and url in msg
    assert "--allow-md5-mismatch" in msg and "pre-2023" in msg
    assert not dest.exists()
    assert not (tmp_path / "data.bin.part").exists()
    assert bad.read_bytes() == DATA
    assert isinstance(info.value, DataError)


def test_allow_md5_mismatch_accepts_with_warning(server, tmp_path):
    url = server.add("/data.bin", DATA)
    dest = tmp_path / "data.bin"
    with pytest.warns(UserWarning, match=OTHER_MD5):
        download_file(url, dest, OTHER_MD5, allow_md5_mismatch=True, **FAST)
    assert dest.read_bytes() == DATA
    assert _tree(tmp_path) == ["data.bin"]


def test_existing_bad_file_moved_aside_and_redownloaded(server, tmp_path):
    url = server.add("/data.bin", DATA)
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old version")
    old_md5 = hashlib.md5(b"old version").hexdigest()
    with pytest.warns(UserWarning, match=old_md5):
        download_file(url, dest, DATA_MD5, **FAST)
    assert dest.read_bytes() == DATA
    assert (tmp_path / f"data.bin.bad-md5-{old_md5}").read_bytes() == b"old version"


def test_cut_transfer_is_resumed_with_range(server, tmp_path):
    cut = 100_000
    url = server.add("/cut.bin", DATA)
    server.state.cut_after["/cut.bin"] = [cut]
    dest = tmp_path / "cut.bin"
    messages: list[str] = []
    download_file(url, dest, DATA_MD5, progress=messages.append, **FAST)
    reqs = server.requests
    assert len(reqs) == 2
    assert reqs[0] == ("/cut.bin", None)
    match = re.fullmatch(r"bytes=(\d+)-", reqs[1][1] or "")
    assert match, reqs
    assert 0 < int(match.group(1)) <= cut
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "cut.bin.part").exists()
    assert any("retry 1/3" in m for m in messages)


def test_existing_part_is_resumed(server, tmp_path):
    url = server.add("/p.bin", DATA)
    dest = tmp_path / "p.bin"
    (tmp_path / "p.bin.part").write_bytes(DATA[:12345])
    download_file(url, dest, DATA_MD5, **FAST)
    assert server.requests == [("/p.bin", "bytes=12345-")]
    assert dest.read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url = server.add("/nr.bin", DATA)
    server.state.ignore_range.add("/nr.bin")
    dest = tmp_path / "nr.bin"
    # A part whose bytes are wrong: appending the 200 body to it would corrupt the file.
    (tmp_path / "nr.bin.part").write_bytes(b"\x00" * 5000)
    messages: list[str] = []
    download_file(url, dest, DATA_MD5, progress=messages.append, **FAST)
    assert server.requests == [("/nr.bin", "bytes=5000-")]
    assert dest.read_bytes() == DATA
    assert any("ignored the Range" in m for m in messages)


def test_wrong_content_range_restarts_from_zero(server, tmp_path):
    url = server.add("/wr.bin", DATA)
    server.state.wrong_content_range.add("/wr.bin")
    dest = tmp_path / "wr.bin"
    (tmp_path / "wr.bin.part").write_bytes(DATA[:777])
    download_file(url, dest, DATA_MD5, **FAST)
    assert server.requests == [("/wr.bin", "bytes=777-"), ("/wr.bin", None)]
    assert dest.read_bytes() == DATA


def test_redirect_is_followed_and_keeps_range(server, tmp_path):
    server.add("/store/r.bin", DATA)
    server.state.redirects["/api/access/datafile/1"] = server.base + "/store/r.bin"
    dest = tmp_path / "r.bin"
    (tmp_path / "r.bin.part").write_bytes(DATA[:4321])
    download_file(server.base + "/api/access/datafile/1", dest, DATA_MD5, **FAST)
    assert server.requests == [("/api/access/datafile/1", "bytes=4321-"),
                               ("/store/r.bin", "bytes=4321-")]
    assert dest.read_bytes() == DATA


def test_complete_part_and_416_is_verified(server, tmp_path):
    url = server.add("/full.bin", DATA)
    dest = tmp_path / "full.bin"
    (tmp_path / "full.bin.part").write_bytes(DATA)
    download_file(url, dest, DATA_MD5, **FAST)
    assert server.requests == [("/full.bin", f"bytes={len(DATA)}-")]
    assert dest.read_bytes() == DATA


def test_416_with_wrong_part_is_a_checksum_mismatch(server, tmp_path):
    url = server.add("/full.bin", DATA)
    dest = tmp_path / "full.bin"
    junk = b"\x01" * (len(DATA) + 10)
    (tmp_path / "full.bin.part").write_bytes(junk)
    with pytest.raises(ChecksumMismatch, match="416"):
        download_file(url, dest, DATA_MD5, **FAST)
    assert not dest.exists()
    assert (tmp_path / f"full.bin.bad-md5-{hashlib.md5(junk).hexdigest()}").exists()


def test_500_is_retried_then_succeeds(server, tmp_path):
    url = server.add("/flaky.bin", DATA)
    server.state.statuses["/flaky.bin"] = [500, 503]
    dest = tmp_path / "flaky.bin"
    download_file(url, dest, DATA_MD5, **FAST)
    assert len(server.requests) == 3
    assert dest.read_bytes() == DATA


def test_persistent_500_raises_download_error(server, tmp_path):
    url = server.add("/broken.bin", DATA)
    server.state.statuses["/broken.bin"] = [500] * 10
    dest = tmp_path / "broken.bin"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, DATA_MD5, timeout=5, retries=2, backoff=0)
    msg = str(info.value)
    assert "500" in msg and url in msg and str(dest) in msg
    assert len(server.requests) == 3
    assert not dest.exists()


def test_404_raises_without_retry_and_keeps_part(server, tmp_path):
    url = server.base + "/missing.bin"
    dest = tmp_path / "missing.bin"
    part = tmp_path / "missing.bin.part"
    part.write_bytes(b"partial")
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, DATA_MD5, **FAST)
    msg = str(info.value)
    assert "404" in msg and url in msg and "missing.bin" in msg
    assert len(server.requests) == 1
    assert not dest.exists()
    assert part.read_bytes() == b"partial"


def test_repeated_cuts_give_up_and_keep_part(server, tmp_path):
    url = server.add("/cut.bin", DATA)
    server.state.cut_after["/cut.bin"] = [50_000, 50_000]
    dest = tmp_path / "cut.bin"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, DATA_MD5, timeout=5, retries=1, backoff=0, chunk=16 * 1024)
    assert url in str(info.value) and "Rerun" in str(info.value)
    assert len(server.requests) == 2
    assert not dest.exists()
    kept = (tmp_path / "cut.bin.part").read_bytes()
    assert 0 < len(kept) <= 100_000 and DATA.startswith(kept)
    # A later run resumes from the kept part and completes.
    download_file(url, dest, DATA_MD5, **FAST)
    assert server.requests[-1] == ("/cut.bin", f"bytes={len(kept)}-")
    assert dest.read_bytes() == DATA


def test_unreachable_server_raises_download_error(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/x.bin"
    with pytest.raises(DownloadError, match=re.escape(url)):
        download_file(url, tmp_path / "x.bin", DATA_MD5, timeout=2, retries=1, backoff=0)
    assert not (tmp_path / "x.bin").exists()


def test_bad_md5_argument_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="32 hex"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", "not-an-md5")


def test_symlinked_part_is_refused(server, tmp_path):
    url = server.add("/s.bin", DATA)
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(b"keep me")
    (tmp_path / "s.bin.part").symlink_to(target)
    with pytest.raises(UnsafePath, match="symlink"):
        download_file(url, tmp_path / "s.bin", DATA_MD5, **FAST)
    assert target.read_bytes() == b"keep me"
    assert server.requests == []


# --------------------------------------------------------------------------------------------------
# safe_destination


@pytest.mark.parametrize("name", [
    "../evil", "/etc/x", "a/../../b", "a/../b", "..", "", "   ", "a//b", "a/", "./a",
    "C:/x", "c:x", "a\\b", "..\\evil", "a/\x00b",
])
def test_safe_destination_refuses_hostile_names(tmp_path, name):
    root = tmp_path / "root"
    with pytest.raises(UnsafePath) as info:
        safe_destination(root, name)
    assert repr(name) in str(info.value)


def test_safe_destination_accepts_normal_paths(tmp_path):
    root = tmp_path / "root"
    assert safe_destination(root, "1D/Advection/Train/x.hdf5") == \
        root.resolve() / "1D" / "Advection" / "Train" / "x.hdf5"
    assert safe_destination(root, "x..y.h5") == root.resolve() / "x..y.h5"


def test_safe_destination_symlinks(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file.bin").symlink_to(outside / "target.bin")
    with pytest.raises(UnsafePath, match="link/evil.bin"):
        safe_destination(root, "link/evil.bin")
    with pytest.raises(UnsafePath, match="file.bin"):
        safe_destination(root, "file.bin")
    # A symlink that stays inside the root is fine.
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert safe_destination(root, "alias/x.bin") == root.resolve() / "real" / "x.bin"


# --------------------------------------------------------------------------------------------------
# download_tasks


@pytest.mark.parametrize("name", ["../evil", "/etc/x", "a/../../b"])
def test_download_tasks_hostile_rows_write_nothing(server, tmp_path, name):
    root = tmp_path / "root"
    root.mkdir()
    url = server.add("/evil", DATA)
    good = ("good", server.add("/good.bin", DATA), "good.bin", DATA_MD5)
    with pytest.raises(UnsafePath, match=re.escape(repr(name))):
        download_tasks(root, table=[good, ("bad", url, name, DATA_MD5)], progress=None,
                       timeout=5, backoff=0)
    assert server.requests == []  # validated before any download
    assert _tree(tmp_path) == ["root"]


def test_download_tasks_symlink_escape_writes_nothing(server, tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "1D").symlink_to(outside, target_is_directory=True)
    url = server.add("/x.hdf5", DATA)
    with pytest.raises(UnsafePath):
        download_tasks(root, table=[("t", url, "1D/x.hdf5", DATA_MD5)], progress=None,
                       timeout=5, backoff=0)
    assert list(outside.iterdir()) == []
    assert server.requests == []


def test_download_tasks_symlinked_part_escape(server, tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "x.bin.part").symlink_to(outside / "stolen")
    url = server.add("/x.bin", DATA)
    with pytest.raises(UnsafePath, match="x.bin.part"):
        download_tasks(root, table=[("t", url, "x.bin", DATA_MD5)], progress=None,
                       timeout=5, backoff=0)
    assert list(outside.iterdir()) == []
    assert server.requests == []


def test_download_tasks_unknown_task(tmp_path):
    with pytest.raises(ValueError) as info:
        download_tasks(tmp_path, ["advection", "nope"], progress=None)
    msg = str(info.value)
    assert "'nope'" in msg
    for task in catalog.FILES:
        assert task in msg
    assert _tree(tmp_path) == []


def test_catalog_rows_match_catalog():
    rows = catalog_rows()
    assert [r[0] for r in rows] == list(catalog.FILES)
    for name, url, rel_path, md5 in rows:
        f = catalog.FILES[name]
        assert (url, rel_path, md5) == (f.url, f.rel_path, f.md5)


def test_download_tasks_catalog_with_base_url(server, tmp_path):
    """The real catalog row for darcy, served by a mirror: upstream layout under the root."""
    spec = catalog.FILES["darcy"]
    server.add("/mirror/" + spec.filename, DATA)
    root = tmp_path / "data"
    with pytest.warns(UserWarning, match="allow-md5-mismatch"):
        result = download_tasks(root, ["darcy"], base_url=server.base + "/mirror/",
                                progress=None, allow_md5_mismatch=True, timeout=5, backoff=0)
    expected = root.resolve() / "2D" / "DarcyFlow" / spec.filename
    assert result == {"darcy": expected}
    assert expected.read_bytes() == DATA
    assert server.requests == [("/mirror/" + spec.filename, None)]


def test_download_tasks_catalog_md5_mismatch_names_old_version(server, tmp_path):
    spec = catalog.FILES["advection"]
    server.add("/" + spec.filename, DATA)
    with pytest.raises(ChecksumMismatch) as info:
        download_tasks(tmp_path, ["advection"], base_url=server.base, progress=None,
                       timeout=5, backoff=0)
    msg = str(info.value)
    assert spec.md5 in msg and DATA_MD5 in msg and "Advection" in msg
    assert not (tmp_path / spec.rel_path).exists()


def test_download_tasks_arbitrary_names_via_base_url(server, tmp_path):
    name = "weird name #1%?.bin"
    server.add("/m/" + name, DATA)
    result = download_tasks(tmp_path, table=[("w", "unused://", "dir/" + name, DATA_MD5)],
                            base_url=server.base + "/m", progress=None, timeout=5, backoff=0)
    assert result["w"].read_bytes() == DATA
    assert result["w"].name == name
    assert server.requests == [("/m/" + name, None)]


def test_hdf5_round_trip_with_resume(server, tmp_path):
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    src = tmp_path / "src.hdf5"
    rng = np.random.default_rng(7)
    tensor = rng.standard_normal((4, 6, 32)).astype(np.float32)
    with h5py.File(src, "w") as f:
        f.create_dataset("tensor", data=tensor)
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, 32, dtype=np.float32))
        f.attrs["beta"] = 0.4
    raw = src.read_bytes()
    md5 = hashlib.md5(raw).hexdigest()
    url = server.add("/small.hdf5", raw)
    server.state.cut_after["/small.hdf5"] = [len(raw) // 2]
    root = tmp_path / "root"
    result = download_tasks(root, table=[("small", url, "1D/Test/small.hdf5", md5)],
                            progress=None, timeout=5, backoff=0)
    out = result["small"]
    assert out == root.resolve() / "1D" / "Test" / "small.hdf5"
    assert len(server.requests) == 2 and server.requests[1][1] is not None
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["tensor"][()], tensor)
        assert f["x-coordinate"].shape == (32,)
        assert f.attrs["beta"] == pytest.approx(0.4)
