"""The sweep's Ray session: a private local instance, or the cluster given by ``--address``."""
from __future__ import annotations

import os
from typing import Any


def start_ray(args) -> bool:
    """Connect to Ray; returns whether this call started it (and so should shut it down).

    In a process where Ray is already initialised (a notebook, a test) the sweep uses that
    session instead of failing.
    """
    import ray

    if ray.is_initialized():
        return False

    env = {k: os.environ[k] for k in ("HARNESS_DATA_AUDIT",) if k in os.environ}
    env.update({"RAY_TRAIN_V2_ENABLED": "0", "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
                "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
                "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "PYTHONWARNINGS": "ignore"})
    if not args.address:   # the local instance started here; a given cluster keeps its mode
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "runtime_env": {"env_vars": env}, "configure_logging": True,
                              "logging_level": "ERROR"}
    # without --address, always start a private local instance, never attach to a cluster that
    # happens to run on this machine
    kwargs["address"] = args.address or "local"
    ray.init(**kwargs)
    return True


def trial_slots(args) -> int:
    """Trials running at once: what the cluster holds (or --max-concurrent)."""
    import ray

    if args.max_concurrent:
        return max(1, args.max_concurrent)
    res = ray.cluster_resources()
    per = (args.cpus_per_trial or 1.0) * max(1, args.workers_per_trial)
    slots = res.get("CPU", 1.0) // per
    if args.gpus_per_trial:
        slots = min(slots, res.get("GPU", 0.0) // args.gpus_per_trial)
    return max(1, int(slots))
