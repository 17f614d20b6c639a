"""The NAS-Bench-360 data this project supports: where each task's files sit, where they are
published, and which checksums exist (``docs/nasbench360.md``).

Only CIFAR-100 has published checksums (torchvision's md5 of the archive). For every other file
neither NAS-Bench-360 nor ORCA publishes one, so the catalog records the published size and
``harness.data download`` computes the md5 of the first complete download and pins it in the data
root (``.nasbench360-md5.json``); later downloads and ``check --verify`` compare against the pin.

Paths are the upstream layout under the data root (ORCA's ``./datasets``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

S3 = "https://pde-xd.s3.amazonaws.com/"
#: NAS-Bench-360's README points here for the files once served from S3 (not fetched by the
#: downloader: Google Drive needs an interactive confirmation for large files)
DRIVE_FOLDER = "https://drive.google.com/drive/folders/1OOp6UrCiP79mTIkCrUdjjHWDo8K0bJUw"

MD5_TORCHVISION = "published (torchvision)"
MD5_PINNED = "none published: pinned on first download"


@dataclass(frozen=True)
class RemoteFile:
    """One published file: URL, where it lands, its checksum status, and how to unpack it."""

    url: str
    rel_path: str
    approx_mb: float | None
    md5: str | None = None
    md5_source: str = MD5_PINNED
    unpack: Literal["", "tar", "zip"] = ""
    unpack_to: str = ""          # folder under the root that an archive is unpacked into

    @property
    def filename(self) -> str:
        return self.rel_path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Nb360Dataset:
    """The files one task reads (``required``, relative to the root; a trailing ``/`` is a folder)
    and the published downloads that provide them."""

    key: str
    required: tuple[str, ...]
    downloads: tuple[RemoteFile, ...]
    real_counts: dict[str, int] = field(default_factory=dict)  # upstream splits, some approximate
    source: str = ""

    @property
    def filename(self) -> str:
        """The first required path (what ``harness.list tasks`` shows)."""
        return self.required[0]

    @property
    def marker(self) -> str:
        """Relative path of the synthetic-data marker written next to the first required path."""
        return self.required[0].rstrip("/") + ".synthetic.json"


def _s3(path: str, mb: float | None, rel: str | None = None, **kw) -> RemoteFile:
    return RemoteFile(S3 + path, rel or path.rsplit("/", 1)[-1], mb, **kw)


_NINA = [f"{kind}_{split}.npy" for split in ("train", "val", "test") for kind in ("ninapro", "label")]

DATASETS: dict[str, Nb360Dataset] = {
    "cifar100": Nb360Dataset(
        "cifar100", ("cifar-100-python/train", "cifar-100-python/test"),
        (RemoteFile("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                    "cifar-100-python.tar.gz", 161, md5="eb9058c3a382ffc7106e4002c42a8d85",
                    md5_source=MD5_TORCHVISION, unpack="tar", unpack_to=""),),
        {"train": 50000, "test": 10000}, "CIFAR-100 python version (torchvision's layout)"),
    "spherical": Nb360Dataset(
        "spherical", ("s2_cifar100.gz",), (_s3("spherical/s2_cifar100.gz", 272),),
        {"train": 50000, "test": 10000}, "NB360 Spherical CIFAR-100"),
    "ninapro": Nb360Dataset(
        "ninapro", tuple(f"ninaPro/{n}" for n in _NINA),
        tuple(_s3(f"ninapro/{n}", None, rel=f"ninaPro/{n}") for n in _NINA),
        {"train": 2638, "val": 659, "test": 659}, "NinaPro DB5 (NB360's windows; ~30 MB in all)"),
    "fsd50k": Nb360Dataset(
        "fsd50k", ("fsd/chunks/tr.csv", "fsd/chunks/val.csv", "fsd/chunks/eval.csv",
                   "fsd/chunks/lbl_map.json", "fsd/noise_22050/"),
        (_s3("audio/audio.zip", 24000, rel="fsd/audio.zip", unpack="zip", unpack_to="fsd"),),
        {"train": 37000, "val": 4000, "test": 10000}, "FSD50K 1-s chunks at 22,050 Hz (RECRAFT's root/fsd)"),
    "darcy-flow": Nb360Dataset(
        "darcy-flow", ("piececonst_r421_N1024_smooth1.mat", "piececonst_r421_N1024_smooth2.mat"),
        (_s3("piececonst_r421_N1024_smooth1.mat", 1600), _s3("piececonst_r421_N1024_smooth2.mat", 1600)),
        {"train": 1000, "test": 100}, "FNO's Darcy flow, 421² (1,024 samples per file)"),
    "psicov": Nb360Dataset(
        "psicov", ("protein/deepcov.lst", "protein/psicov.lst"),
        (_s3("protein.zip", 1100, unpack="zip", unpack_to=""),),
        {"train": 3456, "test": 150}, "PDNet's DeepCov (train) and PSICOV (test) features"),
    "cosmic": Nb360Dataset(
        "cosmic", ("cosmic/train_dirs.npy", "cosmic/test_dirs.npy"),
        (_s3("cosmic/deepCR.ACS-WFC.train.tar", 6500, rel="cosmic/deepCR.ACS-WFC.train.tar",
             unpack="tar", unpack_to="cosmic"),
         _s3("cosmic/deepCR.ACS-WFC.test.tar", 2000, rel="cosmic/deepCR.ACS-WFC.test.tar",
             unpack="tar", unpack_to="cosmic")),
        {"train": 4347, "test": 420}, "deepCR HST ACS/WFC F435W galaxy fields"),
    "ecg": Nb360Dataset(
        "ecg", ("challenge2017.pkl",), (_s3("ECG/challenge2017.pkl", 150),),
        {"records": 8528}, "PhysioNet/CinC 2017 single-lead ECG, 300 Hz"),
    "satellite": Nb360Dataset(
        "satellite", ("satellite_train.npy", "satellite_test.npy"),
        (_s3("satellite/satellite_train.npy", 322), _s3("satellite/satellite_test.npy", 35)),
        {"train": 900000, "test": 100000}, "Satellite image time series, 46 steps, 24 classes"),
    "deepsea": Nb360Dataset(
        "deepsea", ("deepsea_filtered.npz",), (_s3("deepsea/deepsea_filtered.npz", 860),),
        {"train": 71000, "val": 2490, "test": 149400}, "DeepSEA, 36 filtered chromatin labels"),
}

TASK_NAMES: tuple[str, ...] = tuple(DATASETS)
