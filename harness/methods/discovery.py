"""Find method plugins: every ``baselines/*.py`` (``_*.py`` skipped), RECRAFT included.

Each file is imported on its own. A file that fails to import becomes an *unavailable* entry that
carries its error instead of crashing the harness; two classes with the same ``name`` are refused
with both files named; an unknown name gets a "did you mean".
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from harness.methods.contract import Method

BASELINES_DIR = Path(__file__).resolve().parents[2] / "baselines"


class DuplicateMethodName(Exception):
    """Two plugin classes declare the same ``name``."""


class UnknownMethod(KeyError):
    """A method name that no plugin declares."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass
class MethodEntry:
    """A discovered method, or a file that could not be loaded (``method is None``)."""

    name: str
    origin: str
    method: Method | None = None
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.method is not None


def _load_file(path: Path) -> object:
    mod_name = f"_harness_plugin_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    _pickle_by_value(module)
    return module


def _pickle_by_value(module) -> None:
    """Plugin modules are loaded from files, not importable by name on Ray workers: ship them by
    value when their classes are pickled into trials."""
    for name in ("ray.cloudpickle", "cloudpickle"):
        try:
            cp = importlib.import_module(name)
            cp.register_pickle_by_value(module)
        except (ImportError, AttributeError, ValueError):
            continue


def _classes_in(module) -> list[type[Method]]:
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, Method) and obj is not Method and obj.__module__ == module.__name__ \
                and getattr(obj, "name", ""):
            found.append(obj)
    return found


def _short_error(exc: BaseException) -> str:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return f"{type(exc).__name__}: {exc}\n" + "".join(tb[-3:])


def discover(directories: Iterable[Path] | None = None) -> dict[str, MethodEntry]:
    """Name -> entry for every method in ``directories`` (default: ``baselines/``). Broken files
    appear under their file stem."""
    directories = [BASELINES_DIR] if directories is None else [Path(d) for d in directories]
    entries: dict[str, MethodEntry] = {}

    def add(cls: type[Method], origin: str) -> None:
        inst = cls()
        if inst.name in entries and entries[inst.name].available:
            raise DuplicateMethodName(
                f"method name {inst.name!r} is declared twice: in {entries[inst.name].origin} and "
                f"in {origin}; rename one of them (names must be unique).")
        problems = inst.contract_problems()
        if problems:
            entries[inst.name or origin] = MethodEntry(inst.name or origin, origin,
                                                       error="contract: " + "; ".join(problems))
        else:
            entries[inst.name] = MethodEntry(inst.name, origin, method=inst)

    for d in directories:
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = _load_file(path)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the harness
                _add_broken(entries, path, _short_error(exc))
                continue
            classes = _classes_in(module)
            if not classes:
                _add_broken(entries, path, "no Method subclass with a `name` found")
            for cls in classes:
                add(cls, str(path))
    return entries


def _add_broken(entries: dict[str, MethodEntry], path: Path, error: str) -> None:
    """A file that could not be loaded, under its stem — or its path when the stem is taken, so a
    broken file never hides a working method of the same name."""
    key = path.stem if path.stem not in entries else str(path)
    entries[key] = MethodEntry(key, str(path), error=error)


def get_method(name: str, entries: dict[str, MethodEntry] | None = None) -> Method:
    """The method called ``name``; raises with the import error or a suggestion."""
    from harness.suites import did_you_mean

    entries = discover() if entries is None else entries
    entry = entries.get(name)
    if entry is None:
        known = sorted(n for n, e in entries.items() if e.available)
        raise UnknownMethod(f"unknown method {name!r}{did_you_mean(name, known)}; "
                            f"available: {', '.join(known)}")
    if not entry.available:
        raise UnknownMethod(f"method {name!r} ({entry.origin}) is unavailable: {entry.error}")
    return entry.method
