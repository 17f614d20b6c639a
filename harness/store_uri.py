"""Tracking-store URIs, shared by the tracker and the cluster preflight (standard library only,
so the preflight does not import MLflow)."""
from __future__ import annotations

from pathlib import Path


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` (or ``sqlite+driver:///``) URI, resolved as
    SQLAlchemy does; None for other stores and for an in-memory database."""
    scheme, _, rest = tracking_uri.partition(":")
    if scheme.split("+", 1)[0] != "sqlite":
        return None
    if not rest.startswith("///"):
        return None
    rest = rest[3:].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest).resolve()  # "sqlite:////abs" -> "/abs"; "sqlite:///rel" -> CWD/rel
