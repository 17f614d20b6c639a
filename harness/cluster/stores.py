"""What kind of storage or tracking store a URI names, and whether a server answers."""
from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from harness.cluster.issues import (DATABASE_TRACKING_SCHEMES, ERROR, FIX_STORAGE, HTTP_TIMEOUT,
                                    SERVER_TRACKING_SCHEMES, ClusterIssue)


# ----------------------------------------------------------------------------- classification
def _scheme(uri: str) -> str:
    """The URI scheme, lower case; '' for a plain path (Windows drive letters included)."""
    if re.match(r"^[A-Za-z]:[\\/]", uri):
        return ""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", uri)
    return m.group(1).lower() if m else ""


def _local_path(uri: str) -> Path | None:
    """The absolute local path of a plain path or ``file://`` URI, else None."""
    scheme = _scheme(uri)
    if scheme == "file":
        return Path(urlparse(uri).path).resolve()
    if scheme == "":
        return Path(os.path.expanduser(uri)).resolve()
    return None


def _offline_uri(uri: str) -> str:
    """``uri`` rewritten so that pyarrow resolves it without a network call.

    ``FileSystem.from_uri('s3://bucket/x')`` asks AWS for the bucket's region (a HeadBucket call
    that hangs or fails offline); with an explicit ``region`` it only builds the client.
    """
    if _scheme(uri) == "s3" and "region=" not in uri:
        return uri + ("&" if "?" in uri else "?") + "region=us-east-1"
    return uri


def _storage_scheme_issue(uri: str) -> ClusterIssue | None:
    """Whether pyarrow (hence Ray Tune) knows ``uri``'s filesystem; never contacts the network for
    s3/gs/abfs (pyarrow builds those clients lazily)."""
    import pyarrow.fs

    scheme = _scheme(uri)
    try:
        pyarrow.fs.FileSystem.from_uri(_offline_uri(uri))
    except Exception as exc:  # noqa: BLE001 - any failure is reported
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Unrecognized filesystem type" in text:
            return ClusterIssue(
                ERROR, f"storage {uri!r}: pyarrow does not know the {scheme}:// scheme",
                "Ray Tune opens its storage with pyarrow.fs.FileSystem.from_uri, which accepts "
                "local paths and s3://, gs://, abfs(s)://, hdfs:// URIs; the sweep would fail "
                "when Tune creates its experiment folder",
                FIX_STORAGE)
        return ClusterIssue(
            ERROR, f"storage {uri!r}: the driver cannot open it ({text})",
            "Ray Tune's driver writes the experiment state there before any trial starts, so "
            "the sweep would fail at once (an hdfs:// URI needs a JVM and libhdfs on every node)",
            f"install what the {scheme}:// filesystem needs on every node, or {FIX_STORAGE}")
    return None


def _tracking_kind(uri: str | None) -> str:
    """'server' | 'database' | 'sqlite' | 'file' | 'unknown'."""
    if not uri:
        return "file"          # MLflow's own default is ./mlruns (a file store)
    scheme = _scheme(uri)
    base = scheme.split("+", 1)[0]
    if scheme in SERVER_TRACKING_SCHEMES or uri in ("databricks", "databricks-uc"):
        return "server"
    if base == "sqlite":
        return "sqlite"
    if base in DATABASE_TRACKING_SCHEMES:
        return "database"
    if scheme in ("", "file"):
        return "file"
    return "unknown"


def _server_answers(uri: str, timeout: float = HTTP_TIMEOUT) -> str | None:
    """None when something answers HTTP at ``uri`` (any status), else why not."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None            # it answered (maybe 401/403 behind a proxy): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"

def _redact(uri: str) -> str:
    """A URI with any password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@/]+@", r"\1***@", uri)
