"""Retries of MLflow client calls: bounded, jittered, with a deadline, transient errors only."""
from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from mlflow.exceptions import MlflowException
from harness.tracking.values import T


_log = logging.getLogger("harness.tracking")   # one logger for the package, as before the split


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retry of transient tracking errors.

    Attempt ``n`` (1-based) that fails transiently sleeps ``uniform(0, min(max_delay_s,
    base_delay_s * 2**(n-1)))`` and tries again, up to ``attempts`` tries in all, and no new try
    starts once ``deadline_s`` has passed since the first one. Defaults: 6 tries, waits of at most
    0.2, 0.4, 0.8, 1.6, 3.2 s, 60 s deadline.
    """

    attempts: int = 6
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    deadline_s: float = 60.0


_TRANSIENT_CODES = frozenset({
    "TEMPORARILY_UNAVAILABLE",
    "SERVICE_UNDER_MAINTENANCE",
    "WORKSPACE_TEMPORARILY_UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "REQUEST_LIMIT_EXCEEDED",
    "RESOURCE_EXHAUSTED",
    "COULD_NOT_ACQUIRE_LOCK",
    "ABORTED",
})


_TRANSIENT_PATTERNS = re.compile(
    r"database is locked|database table is locked|max retries exceeded|connection refused"
    r"|connection reset|connection aborted|remote end closed|remotedisconnected|broken pipe"
    r"|timed out|timeout exception|temporarily unavailable|too many \d+ error responses"
    r"|bad gateway|service unavailable|gateway time-?out|error code 5\d\d",
    re.IGNORECASE,
)


def _is_transient(exc: BaseException, remote: bool = False) -> bool:
    """True for errors worth retrying (locks, 5xx, connection trouble); False for the rest."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:  # requests is an mlflow dependency, but keep the check optional
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, MlflowException):
        if exc.error_code in _TRANSIENT_CODES:
            return True
        if remote:  # a 500/502/503/504 answer from the server (MLflow maps it to an error code)
            try:
                if exc.get_http_status_code() in (500, 502, 503, 504):
                    return True
            except Exception:  # noqa: BLE001 - defensive
                pass
        if exc.error_code != "INTERNAL_ERROR":
            return False  # a definite answer (bad value, not found, ...): the message is data
    return bool(_TRANSIENT_PATTERNS.search(str(exc)))


def _retry(
    call: Callable[..., T],
    *args: Any,
    policy: RetryPolicy = RetryPolicy(),
    remote: bool = False,
    what: str = "",
    on_retry: Callable[[], T | None] | None = None,
    **kwargs: Any,
) -> T:
    """Call ``call(*args, **kwargs)``, retrying transient errors under ``policy``.

    ``on_retry`` (optional) runs before each new try; if it returns something other than None, that
    value is returned instead of calling again (used to make a retried create idempotent).
    """
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below
            if not _is_transient(exc, remote=remote):
                raise
            elapsed = time.monotonic() - start
            if attempt >= policy.attempts or elapsed >= policy.deadline_s:
                # the caller gets the exception and reports it (a sweep: in one line)
                _log.info("tracking: %s failed after %d tries (%.1f s): %s",
                             what or getattr(call, "__name__", "call"), attempt, elapsed, exc)
                raise
            delay = random.uniform(0.0, min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1)))
            _log.info("tracking: transient error in %s (try %d/%d), retrying in %.2f s: %s",
                      what or getattr(call, "__name__", "call"), attempt, policy.attempts, delay, exc)
            time.sleep(delay)
        if on_retry is not None:
            found = on_retry()
            if found is not None:
                return found
