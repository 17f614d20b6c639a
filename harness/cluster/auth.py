"""Ray 2.60's token authentication: the hint and the connection error a user sees."""
from __future__ import annotations

import os
import re
from pathlib import Path

from harness.cluster.issues import AUTH_MODE_ENV


# ----------------------------------------------------------------------------- auth
def _token_sources() -> list[str]:
    """Where this process would find a Ray auth token (env var, token file)."""
    found = []
    if os.environ.get("RAY_AUTH_TOKEN"):
        found.append("$RAY_AUTH_TOKEN")
    p = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if p and Path(p).expanduser().is_file():
        found.append(p)
    default = Path.home() / ".ray" / "auth_token"
    if default.is_file():
        found.append(str(default))
    return found


def _auth_advice() -> str:
    return ("Set the same mode on every node and on the driver, before `ray start` and before the "
            "sweep: `export RAY_AUTH_MODE=token` with the same token everywhere (copy the head's "
            "~/.ray/auth_token to each machine, or export RAY_AUTH_TOKEN=<token>; `ray "
            "get-auth-token` prints it on the head), then restart the nodes that joined without "
            "it. For a private test cluster, `export RAY_AUTH_MODE=disabled` on every node and "
            "the driver instead (and restart the head).")


def _is_auth_failure(exc: BaseException | str | None) -> bool:
    if exc is None:
        return False
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return bool(re.search(r"InvalidAuthToken|AuthenticationError|Unauthenticated|"
                          r"authentication token", text, re.IGNORECASE))


def auth_mode_hint(exc: BaseException | str | None = None) -> str | None:
    """Advice on Ray 2.60's token authentication, or None when nothing looks wrong.

    Ray 2.60 turns token authentication on for a cluster started on a machine that has a token
    (``~/.ray/auth_token``, written by an earlier ``ray.init()``) when ``RAY_AUTH_MODE`` is unset,
    but a node joining with ``ray start --address`` does not turn it on by itself: it is refused
    with ``InvalidAuthToken`` after about 20 s. A driver fails the same way when its
    ``RAY_AUTH_MODE`` is ``disabled``, when its token differs, or when the mode is unset and it
    is given an explicit address (``ray.init`` picks a token up only for ``address="auto"``). Pass ``exc`` (a connection failure, or its
    text) to have it recognised.
    """
    mode = os.environ.get(AUTH_MODE_ENV)
    tokens = _token_sources()
    if _is_auth_failure(exc):
        return (f"Ray refused the connection: token authentication does not match "
                f"(InvalidAuthToken). Here RAY_AUTH_MODE is "
                f"{mode if mode is not None else 'unset'}"
                f"{' with a token in ' + ', '.join(tokens) if tokens else ' and no token is set'}. "
                + _auth_advice())
    if mode is None and tokens:
        return (f"RAY_AUTH_MODE is unset while a Ray auth token exists ({', '.join(tokens)}): "
                "a Ray 2.60 head started here turns token authentication on by itself, but a "
                "node that joins with `ray start --address` does not, nor does a driver given an "
                "explicit address (only `--address auto` picks the token up), and they are "
                "refused with InvalidAuthToken. " + _auth_advice())
    if mode is not None and mode.lower() == "token" and not tokens:
        return ("RAY_AUTH_MODE=token but no token is set here (no $RAY_AUTH_TOKEN, "
                "$RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): copy the head's ~/.ray/auth_token "
                "to this machine or export RAY_AUTH_TOKEN=<token>. " + _auth_advice())
    return None


def connect_error_message(exc: BaseException | str, address: str | None = None) -> str:
    """What to tell the user when ``ray.init(address=...)`` (or ``ray start --address``) failed.

    Ray 2.60 reports a token mismatch only as ``ConnectionError: Failed to connect to Ray
    cluster at ...`` after about 20 s; the ``InvalidAuthToken`` text is in log lines printed on
    stderr, not in the exception. So an auth failure is named as such when the text shows it, and
    listed as the first likely cause of any other connection failure.
    """
    where = f" at {address}" if address else ""
    text = str(exc) if not isinstance(exc, str) else exc
    first = text.splitlines()[0] if text else type(exc).__name__
    head = f"could not connect to the Ray cluster{where}: {first}"
    if _is_auth_failure(exc):
        return f"{head}\n{auth_mode_hint(exc)}"
    mode = os.environ.get(AUTH_MODE_ENV)
    tokens = _token_sources()
    state = (f"RAY_AUTH_MODE is {mode if mode is not None else 'unset'} here"
             f"{', with a token in ' + ', '.join(tokens) if tokens else ', with no token'}")
    return "\n".join([
        head,
        "Likely causes:",
        "  1. Token authentication differs between this process and the cluster (Ray 2.60; the "
        "log lines above then say 'InvalidAuthToken'); " + state + ". " + _auth_advice(),
        "  2. Nothing listens there: check the address (`ray start --head` prints it; "
        "`--address auto` finds a cluster started on this machine), that the head is running "
        "(`ray status` on the head), and that its port (6379 by default) is open to this "
        "machine.",
    ])
