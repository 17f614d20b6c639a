"""Errors raised by the data layer.

Every message names the file (and key or field) involved, says what was expected and what was
found, and how to fix it. Callers catch :class:`DataError` to report bad input without a traceback.
"""
from __future__ import annotations


class DataError(Exception):
    """Base class of every data-layer error; its message is meant for a person."""


class MissingDataFile(DataError):
    """A task's file is not under the data root."""


class SchemaMismatch(DataError):
    """A file exists but its keys, shapes, dtypes or attributes are not what the task expects."""


class CorruptFile(DataError):
    """A file cannot be opened or read (truncated HDF5, bad superblock, unreadable chunk)."""


class ChecksumMismatch(DataError):
    """A downloaded file's md5 differs from the published one."""


class UnsafePath(DataError):
    """A file name or relative path would land outside the data root."""


class DownloadError(DataError):
    """A download failed (HTTP error, connection cut, server refused a range)."""
