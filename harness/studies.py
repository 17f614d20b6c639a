"""Each cell's Optuna study, persisted in an RDB storage under the sweep's folder.

The engine's searcher drives one in-memory study per cell (``harness.engine.study``; Tune
checkpoints it with the experiment, so a resumed sweep continues it). Each time a search trial of
a cell ends, the searcher copies that cell's study into ``<sweep>/optuna.db`` (sqlite), named
``"<task>/<method>"``: the trials' states, parameters with their distributions, values, and the
per-epoch intermediate values the scheduler (ASHA) saw. The copy replaces the previous one, so
the stored study always holds the cell's latest search, resumed or retried. Open it with
``optuna-dashboard sqlite:///<sweep>/optuna.db``. Only the URL travels with the searcher (Tune
pickles it); the storage itself is opened once per process.
"""
from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any, Mapping

STUDY_FILE = "optuna.db"
_log = logging.getLogger(__name__)
_STORAGES: dict[str, Any] = {}


def storage_url(sweep_dir: str | Path) -> str:
    """The sqlite URL of the sweep's study storage."""
    return f"sqlite:///{(Path(sweep_dir) / STUDY_FILE).resolve()}"


def open_storage(url: str):
    """The :class:`optuna.storages.RDBStorage` at ``url`` (created on first use, once per process)."""
    import optuna

    if url not in _STORAGES:
        # the driver is the only writer; a generous lock timeout covers a dashboard reading meanwhile
        _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return _STORAGES[url]


def study_name(task: str, method: str) -> str:
    """A cell's study name in the storage."""
    return f"{task}/{method}"


def save_study(url: str, name: str, study, attrs: Mapping[str, Any] | None = None) -> None:
    """Replace the stored study ``name`` with a copy of ``study`` (its trials and direction)."""
    import optuna

    storage = open_storage(url)
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:                       # not stored yet
        pass
    copy = optuna.create_study(storage=storage, study_name=name, direction=study.direction)
    for k, v in (attrs or {}).items():
        copy.set_user_attr(k, v)
    copy.add_trials(study.get_trials(deepcopy=False))


def try_save_study(url: str | None, name: str, study, attrs: Mapping[str, Any] | None = None) -> None:
    """:func:`save_study`, with a warning instead of an error: a study copy never stops a sweep."""
    if url is None or study is None:
        return
    try:
        save_study(url, name, study, attrs)
    except Exception as exc:  # noqa: BLE001 - the results table, not this copy, is the record
        _log.warning("could not save the Optuna study %s to %s: %s", name, url, exc)


def dashboard_command(sweep_dir: str | Path) -> str:
    """The command that opens the sweep's studies (``pip install optuna-dashboard``)."""
    return f"optuna-dashboard {shlex.quote(storage_url(sweep_dir))}"
