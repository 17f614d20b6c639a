"""Preflight checks for a sweep on a multi-node Ray cluster, and help with Ray 2.60's token auth.

On one machine every path is shared by construction, so nothing here has anything to say. Once the
cluster has more than one alive node, two things have to be reachable from every node, and
:func:`preflight` checks both before any trial starts:

* **the Tune storage** (``--storage``). Trials persist their checkpoints and results under it
  from whichever node they run on, and Ray stopped syncing worker-node folders to the head in
  Ray 2.7. It must be an object-store URI that pyarrow (which Ray Tune uses for storage)
  understands (``s3://``, ``gs://``, ``abfs://``, ``hdfs://`` ...), or a folder that is mounted at
  the same path on every node. A local path is *verified*: the driver writes a probe file and a
  Ray task pinned to each other node (``NodeAffinitySchedulingStrategy(soft=False)``) reads it and
  writes a reply that the driver reads back. A node that cannot see or write the folder is an
  error that names the node.
* **the MLflow tracking store** (``--tracking-uri``). An ``http(s)://`` server (checked to answer
  from the driver) or a database server (``postgresql://``, ``mysql://`` ...) is fine. A
  ``sqlite:///`` database is probed like storage: on a folder every node sees it is a warning
  (works, but sqlite over NFS is not safe for many writers); on a node-local disk it is an error
  (:data:`LOCAL_TRACKING_LEVEL`).

Two more folders are checked when given, as warnings: the stage cache (``cache_dir``; not shared
means each node rebuilds it) and the data folder (``data_root``; read-only check of a sample of
files, since nodes read it only when Ray's object store has no copy of the data).

The weights of every planned body (``bodies``) are looked for on every node too: trials load their
body from their node's disk, so a body missing on a node is an error naming it
(:mod:`~harness.cluster.bodies`).

Each finding is a :class:`ClusterIssue` (what, why, how to fix, level). The sweep refuses to start
on errors and prints warnings (see ``docs/cluster.md``). ``python -m harness.cluster --address
auto --storage ... --tracking-uri ...`` runs the same checks on their own.

:func:`auth_mode_hint` and :func:`connect_error_message` explain the most common reason a node or
driver cannot join a Ray 2.60 cluster: token authentication enabled on one side only.
"""
from __future__ import annotations

from harness.cluster.auth import auth_mode_hint, connect_error_message
from harness.cluster.checks import preflight
from harness.cluster.issues import (ERROR, LOCAL_TRACKING_LEVEL, PROBE_PREFIX, WARNING, ClusterIssue,
                                    format_issues, has_errors)
from harness.cluster.probe import alive_nodes

__all__ = [
    "ERROR",
    "LOCAL_TRACKING_LEVEL",
    "PROBE_PREFIX",
    "WARNING",
    "ClusterIssue",
    "alive_nodes",
    "auth_mode_hint",
    "connect_error_message",
    "format_issues",
    "has_errors",
    "preflight",
]
