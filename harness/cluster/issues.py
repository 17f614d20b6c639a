"""A preflight finding (what, why, how to fix, level) and the settings the checks share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

ERROR = "error"
WARNING = "warning"

#: Level of a tracking store that lives on one node's local disk (sqlite:/// or a file store) when
#: the cluster has several nodes. The harness writes MLflow from the Tune driver process only, so
#: such a store does work while every sweep of a project is started on the machine that holds it;
#: it is an error because any other way of starting or resuming the sweep (another host, ``ray job
#: submit`` on a different node, a ``ray://`` client whose Tune driver runs on the head) silently
#: writes to a different, empty database.
LOCAL_TRACKING_LEVEL = ERROR

#: Tracking URIs served by a process that every node reaches over the network.
SERVER_TRACKING_SCHEMES = ("http", "https", "databricks", "databricks-uc")
#: SQLAlchemy database URIs MLflow accepts (``postgresql+psycopg2://`` and so on match too).
DATABASE_TRACKING_SCHEMES = ("postgresql", "postgres", "mysql", "mssql", "oracle")

AUTH_MODE_ENV = "RAY_AUTH_MODE"
PROBE_PREFIX = ".harness-preflight-"
DEFAULT_PROBE_TIMEOUT = 30.0
HTTP_TIMEOUT = 5.0

FIX_STORAGE = ("pass --storage a folder mounted at the same path on every node (NFS, EFS, "
               "Filestore, a CephFS or Lustre mount ...), or an object-store URI such as "
               "--storage s3://BUCKET/harness-runs (the nodes need credentials for it)")
FIX_TRACKING = ("start an MLflow server that every node can reach, e.g. on the head: "
                "`mlflow server --backend-store-uri postgresql://USER:PASS@DBHOST/mlflow "
                "--artifacts-destination s3://BUCKET/mlflow --host 0.0.0.0 --port 5000`, and pass "
                "--tracking-uri http://HEAD:5000")


# ----------------------------------------------------------------------------- issues
@dataclass(frozen=True)
class ClusterIssue:
    """One thing a multi-node sweep needs and does not have."""

    level: str                  # "error" (the sweep refuses to start) or "warning" (printed)
    what: str                   # what is missing or wrong
    why: str                    # why it matters on a cluster
    fix: str                    # how to fix it
    node: str | None = None     # the node concerned, when it is one node's problem

    def __post_init__(self):
        if self.level not in (ERROR, WARNING):
            raise ValueError(f"level must be {ERROR!r} or {WARNING!r}, got {self.level!r}")

    def __str__(self) -> str:
        return f"{self.level}: {self.what}"


def has_errors(issues: Iterable[ClusterIssue]) -> bool:
    return any(i.level == ERROR for i in issues)


def format_issues(issues: Sequence[ClusterIssue], title: str = "cluster preflight") -> str:
    """A readable block: errors first, each with why and how to fix (a multi-line fix indented)."""
    if not issues:
        return f"{title}: no issues"
    errors = [i for i in issues if i.level == ERROR]
    warnings_ = [i for i in issues if i.level == WARNING]
    head = (f"{title}: {len(errors)} error(s), {len(warnings_)} warning(s)"
            + ("; the sweep will not start until the errors are fixed" if errors else ""))
    lines = [head]
    for i in errors + warnings_:
        lines.append(f"  {i.level.upper():<8}{i.what}")
        lines.append(f"          why: {i.why}")
        lines.append(f"          fix: " + i.fix.strip().replace("\n", "\n               "))
    return "\n".join(lines)
