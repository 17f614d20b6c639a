"""Low-level readers for the file formats NAS-Bench-360 is published in.

Pickles (CIFAR-100 batches, Spherical's gzip pickle, ECG's dict, PSICOV's feature and distance
files, NumPy object arrays) are read with :class:`SafeUnpickler`, which admits only what those
files contain (numpy arrays, dtypes and scalars; dicts, lists, strings and numbers are plain
pickle opcodes), so a tampered file cannot run code. Upstream reads the same bytes with
``pickle.load`` / ``np.load(allow_pickle=True)``; every file the upstream loaders accept and that
holds only such objects is read to the same values.

Large numeric arrays are memory-mapped where the format allows it (``.npy``, uncompressed
``.npz`` members, MAT v7.3 via HDF5 hyperslabs).
"""
from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from harness.data.errors import CorruptFile, MissingDataFile, SchemaMismatch

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
    ("collections", "OrderedDict"),
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers and refuses any other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: NAS-Bench-360 files hold only numpy arrays, "
            f"dicts, lists, strings and numbers")


def _unpickle(fh: BinaryIO, path: Path, encoding: str) -> Any:
    try:
        return SafeUnpickler(fh, encoding=encoding).load()
    except pickle.UnpicklingError as exc:
        raise CorruptFile(f"{path}: {exc}. Re-download the file or re-create it with "
                          f"`python -m harness.data synth --suite nasbench360`.") from exc
    except (EOFError, ValueError, TypeError, IndexError, AttributeError, ImportError,
            OSError, UnicodeDecodeError) as exc:
        raise CorruptFile(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); the file "
                          f"is truncated or in another format. Re-download or re-create it.") from exc


def require_file(path: Path, what: str, task: str) -> Path:
    """``path`` if it is a file, else :class:`MissingDataFile` naming it and how to get it."""
    if not path.is_file():
        raise MissingDataFile(
            f"{path}: {what} for task {task!r} not found.\n"
            f"  Make synthetic data:  python -m harness.data synth --suite nasbench360 --root DIR "
            f"--tasks {task}\n"
            f"  Download the real data: python -m harness.data download --suite nasbench360 "
            f"--root DIR --tasks {task}")
    return path


def load_pickle(path: Path, encoding: str = "ASCII") -> Any:
    """A pickle file (``.pkl``), read safely."""
    with open(path, "rb") as fh:
        return _unpickle(fh, path, encoding)


def load_gzip_pickle(path: Path, encoding: str = "ASCII") -> Any:
    """A gzip-compressed pickle (Spherical's ``s2_cifar100.gz``), read safely."""
    try:
        with gzip.open(path, "rb") as fh:
            return _unpickle(fh, path, encoding)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise CorruptFile(f"{path}: not a complete gzip file ({exc}); re-download or re-create it.") from exc


def _npy_header(fh: BinaryIO, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fh)
        return np.lib.format.read_array_header_2_0(fh)
    except ValueError as exc:
        raise CorruptFile(f"{path}: not a NumPy .npy file ({exc}); re-download or re-create it.") from exc


def load_npy(path: Path, encoding: str = "ASCII", mmap: bool = True) -> Any:
    """A ``.npy`` file as ``np.load(allow_pickle=True)`` returns it, without running pickled code.

    Numeric arrays are memory-mapped (``mmap``); object arrays (NumPy pickles them) are unpickled
    safely; a 0-d object array holding a dict (``np.save`` of a dict, Satellite) comes back as that
    array, so ``arr[()]`` gives the dict exactly as upstream.
    """
    with open(path, "rb") as fh:
        shape, fortran, dtype = _npy_header(fh, path)
        if dtype.hasobject:
            arr = _unpickle(fh, path, encoding)
            if not isinstance(arr, np.ndarray):
                raise CorruptFile(f"{path}: the pickled payload is a {type(arr).__name__}, "
                                  f"expected the numpy array of shape {shape}")
            return arr
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise CorruptFile(f"{path}: cannot read the array ({exc}); the file is truncated. "
                          f"Re-download or re-create it.") from exc


class NpzArrays:
    """The arrays of an ``.npz`` file by key; uncompressed members are memory-mapped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorruptFile(f"{path}: not a readable .npz (zip) file ({exc}); re-download or "
                              f"re-create it.") from exc
        self.keys = sorted(n[:-4] for n in self._zip.namelist() if n.endswith(".npy"))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzArrays":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, key: str) -> np.ndarray:
        """Array ``key`` (``SchemaMismatch`` naming the keys found when it is missing)."""
        if key not in self.keys:
            raise SchemaMismatch(f"{self.path}: key {key!r} is missing (found keys {self.keys}); "
                                 f"expected the upstream keys of this file.")
        info = self._zip.getinfo(key + ".npy")
        if info.compress_type == zipfile.ZIP_STORED:
            with open(self.path, "rb") as fh:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise CorruptFile(f"{self.path}: bad zip local header for member {key!r}")
                name_len = int.from_bytes(local[26:28], "little")
                extra_len = int.from_bytes(local[28:30], "little")
                start = info.header_offset + 30 + name_len + extra_len
                fh.seek(start)
                shape, fortran, dtype = _npy_header(fh, self.path)
                if not dtype.hasobject:
                    return np.memmap(self.path, dtype=dtype, mode="r", offset=fh.tell(),
                                     shape=shape, order="F" if fortran else "C")
        try:
            with self._zip.open(info) as fh:
                return np.lib.format.read_array(io.BufferedReader(fh), allow_pickle=False)
        except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise CorruptFile(f"{self.path}: member {key!r} cannot be read ({exc}); the file is "
                              f"damaged. Re-download or re-create it.") from exc


def read_mat_field(path: Path, field: str, rows: int, stride: int) -> np.ndarray:
    """``field[:rows, ::stride, ::stride]`` of a MAT file as float32, like upstream's MatReader.

    MAT v5 and older go through ``scipy.io.loadmat`` (one variable at a time); MAT v7.3 is HDF5,
    read with h5py as a strided hyperslab, with the axes reversed as upstream does.
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, variable_names=[field])
    except NotImplementedError:  # "Please use HDF reader for matlab v7.3 files"
        return _read_mat73(path, field, rows, stride)
    except (ValueError, OSError, TypeError) as exc:
        try:
            return _read_mat73(path, field, rows, stride)
        except CorruptFile:
            raise CorruptFile(f"{path}: not a readable MAT file ({exc}); re-download or "
                              f"re-create it.") from exc
    if field not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        try:
            found = sorted(k for k in scipy.io.whosmat(path))
        except Exception:  # noqa: BLE001 - only for the message
            pass
        raise SchemaMismatch(f"{path}: field {field!r} is missing (found {found}); expected the "
                             f"upstream fields 'coeff' and 'sol'.")
    arr = mat[field]
    if arr.ndim != 3:
        raise SchemaMismatch(f"{path}: field {field!r} has shape {arr.shape}, expected 3 axes "
                             f"(samples, x, y)")
    return np.ascontiguousarray(arr[:rows, ::stride, ::stride], dtype=np.float32)


def mat_field_shape(path: Path, field: str) -> tuple[int, ...]:
    """The shape of ``field`` in MATLAB's order (samples first), from the headers only."""
    import h5py
    import scipy.io

    try:
        found = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    except NotImplementedError:
        found = None
    except (ValueError, OSError, TypeError):
        found = None
    if found is None:
        try:
            with h5py.File(path, "r") as f:
                found = {k: tuple(reversed(v.shape)) for k, v in f.items()
                         if isinstance(v, h5py.Dataset)}
        except OSError as exc:
            raise CorruptFile(f"{path}: neither a MAT v5 nor a MAT v7.3 (HDF5) file ({exc}); "
                              f"re-download or re-create it.") from exc
    if field not in found:
        raise SchemaMismatch(f"{path}: field {field!r} is missing (found {sorted(found)}); "
                             f"expected the upstream fields 'coeff' and 'sol'.")
    return tuple(int(n) for n in found[field])


def _read_mat73(path: Path, field: str, rows: int, stride: int) -> np.ndarray:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFile(f"{path}: neither a MAT v5 nor a MAT v7.3 (HDF5) file ({exc})") from exc
    with f:
        ds = f.get(field)
        if not isinstance(ds, h5py.Dataset):
            raise SchemaMismatch(f"{path}: field {field!r} is missing (found {sorted(f.keys())}); "
                                 f"expected the upstream fields 'coeff' and 'sol'.")
        if ds.ndim != 3:
            raise SchemaMismatch(f"{path}: field {field!r} has shape {ds.shape}, expected 3 axes "
                                 f"(y, x, samples) in MAT v7.3 order")
        # v7.3 stores the transpose: (y, x, n); upstream reverses the axes after reading it whole
        block = ds[::stride, ::stride, :rows]
    return np.ascontiguousarray(np.transpose(block, (2, 1, 0)), dtype=np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono PCM/float WAV as float32 in [-1, 1) (soundfile's scaling) and its sample rate."""
    import scipy.io.wavfile

    try:
        rate, data = scipy.io.wavfile.read(path)
    except (ValueError, OSError, EOFError) as exc:
        raise CorruptFile(f"{path}: not a readable WAV file ({exc}); re-create or re-download it.") from exc
    if data.ndim != 1:
        raise SchemaMismatch(f"{path}: {data.shape[1]} audio channels, expected mono (1)")
    if data.dtype == np.int16:
        x = data / 32768.0
    elif data.dtype == np.int32:
        x = data / 2147483648.0
    elif data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.floating):
        x = data
    else:
        raise SchemaMismatch(f"{path}: WAV sample type {data.dtype}, expected PCM 8/16/32-bit or float")
    return x.astype(np.float32), int(rate)
