"""Writing a synthetic task's files in the upstream formats, each atomically, with a manifest.

Every file goes to a temporary name in its final folder and is moved into place with
``os.replace``; the set of files written (with sizes) becomes the task's synthetic-data marker.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, BinaryIO

import numpy as np


class FileSet:
    """Writes files under ``root`` and remembers what it wrote (``written``: rel path → bytes)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.written: dict[str, int] = {}

    def _atomic(self, rel: str, write: Callable[[BinaryIO], None]) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.written[rel] = path.stat().st_size
        return path

    def pickle(self, rel: str, obj: Any, gz: bool = False) -> Path:
        def write(fh):
            if gz:
                with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as z:
                    pickle.dump(obj, z, protocol=4)
            else:
                pickle.dump(obj, fh, protocol=4)
        return self._atomic(rel, write)

    def npy(self, rel: str, arr: Any) -> Path:
        """``np.save`` (object arrays and dicts are pickled, as upstream's files are)."""
        return self._atomic(rel, lambda fh: np.save(fh, arr, allow_pickle=True))

    def npz(self, rel: str, **arrays: np.ndarray) -> Path:
        """``np.savez`` without compression (upstream reads it with a plain ``np.load``)."""
        return self._atomic(rel, lambda fh: np.savez(fh, **arrays))

    def mat(self, rel: str, fields: dict[str, np.ndarray]) -> Path:
        import scipy.io

        return self._atomic(rel, lambda fh: scipy.io.savemat(fh, fields, do_compression=False))

    def wav(self, rel: str, audio: np.ndarray, rate: int) -> Path:
        import scipy.io.wavfile

        pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
        return self._atomic(rel, lambda fh: scipy.io.wavfile.write(fh, rate, pcm))

    def text(self, rel: str, content: str) -> Path:
        return self._atomic(rel, lambda fh: fh.write(content.encode()))


def write_marker(root: Path, rel: str, content: dict[str, Any]) -> Path:
    """Write the JSON marker atomically (``sort_keys`` so identical runs give identical files)."""
    fs = FileSet(root)
    return fs.text(rel, json.dumps(content, indent=1, sort_keys=True) + "\n")
