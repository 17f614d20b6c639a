"""The PDEBench files this project supports: name, published URL and md5, layout and schema.

The URL/md5 rows are data from PDEBench's published download table (see
``docs/data.md`` §5). The schema describes the *real* files; synthetic files use the
same keys, dtypes, axis order and attributes, with smaller axis sizes.

Axis symbols used in shapes: ``N`` samples, ``T`` saved time frames, ``X``/``Y`` space, ``T+1`` a
time coordinate one longer than the frames (an upstream quirk of the single-file 1D sets).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

Layout = Literal["single", "multi"]


@dataclass(frozen=True)
class KeySpec:
    """One dataset inside an HDF5 file: its path, symbolic axes, and whether it is a coordinate."""

    key: str
    axes: tuple[str, ...]
    coordinate: bool = False


@dataclass(frozen=True)
class PdebenchFile:
    """One published PDEBench file and the schema a reader checks it against."""

    filename: str
    url: str
    rel_dir: str
    md5: str
    layout: Layout
    keys: tuple[KeySpec, ...]
    real_sizes: Mapping[str, int]
    attrs: Mapping[str, float] = field(default_factory=dict)

    @property
    def rel_path(self) -> str:
        """Upstream relative location, e.g. ``1D/Advection/Train/1D_Advection_Sols_beta0.4.hdf5``."""
        return f"{self.rel_dir.rstrip('/')}/{self.filename}"

    def real_shape(self, key: str) -> tuple[int, ...]:
        """The shape ``key`` has in the real (published) file."""
        spec = next(k for k in self.keys if k.key == key)
        return tuple(_size(ax, self.real_sizes) for ax in spec.axes)


def _size(axis: str, sizes: Mapping[str, int]) -> int:
    if axis.endswith("+1"):
        return sizes[axis[:-2]] + 1
    if axis.isdigit():
        return int(axis)
    return sizes[axis]


_DARUS = "https://darus.uni-stuttgart.de/api/access/datafile/"

_SINGLE_1D = (
    KeySpec("tensor", ("N", "T", "X")),
    KeySpec("x-coordinate", ("X",), coordinate=True),
    KeySpec("t-coordinate", ("T+1",), coordinate=True),
)

# Keyed by task name (the names used on the command line and in results).
FILES: dict[str, PdebenchFile] = {
    "advection": PdebenchFile(
        "1D_Advection_Sols_beta0.4.hdf5", _DARUS + "255674", "1D/Advection/Train/",
        "d595bbfd2c659df995a93cd40d6ea568", "single", _SINGLE_1D,
        {"N": 10000, "T": 201, "X": 1024}, {"beta": 0.4}),
    "burgers": PdebenchFile(
        "1D_Burgers_Sols_Nu1.0.hdf5", _DARUS + "281365", "1D/Burgers/Train/",
        "9021eba35332d127306f11ef84c1a60f", "single", _SINGLE_1D,
        {"N": 10000, "T": 201, "X": 1024}, {"Nu": 1.0}),
    "diffusion-reaction-1d": PdebenchFile(
        "ReacDiff_Nu0.5_Rho1.0.hdf5", _DARUS + "133177", "1D/ReactionDiffusion/Train/",
        "69a429239778d529cd419ed5888ea835", "single", _SINGLE_1D,
        {"N": 10000, "T": 101, "X": 1024}, {"Nu": 0.5, "rho": 1.0}),
    "diffusion-sorption": PdebenchFile(
        "1D_diff-sorp_NA_NA.h5", _DARUS + "133020", "1D/diffusion-sorption/",
        "9d466d1213065619d087319e16d9a938", "multi",
        (KeySpec("data", ("T", "X", "1")), KeySpec("grid/x", ("X",), coordinate=True),
         KeySpec("grid/t", ("T",), coordinate=True)),
        {"N": 10000, "T": 101, "X": 1024}),
    "navier-stokes-1d": PdebenchFile(
        "1D_CFD_Rand_Eta0.1_Zeta0.1_periodic_Train.hdf5", _DARUS + "164668", "1D/CFD/Train/",
        "45655bd77d006ab539c52b7fbcf099b9", "single",
        (KeySpec("density", ("N", "T", "X")), KeySpec("pressure", ("N", "T", "X")),
         KeySpec("Vx", ("N", "T", "X")), KeySpec("x-coordinate", ("X",), coordinate=True),
         KeySpec("t-coordinate", ("T+1",), coordinate=True)),
        {"N": 10000, "T": 101, "X": 1024}, {"eta": 0.1, "zeta": 0.1}),
    "darcy": PdebenchFile(
        "2D_DarcyFlow_beta0.1_Train.hdf5", _DARUS + "133218", "2D/DarcyFlow/",
        "294f9a03a4aa16b0e386469ca8b471be", "single",
        (KeySpec("tensor", ("N", "1", "X", "Y")), KeySpec("nu", ("N", "X", "Y")),
         KeySpec("x-coordinate", ("X",), coordinate=True),
         KeySpec("y-coordinate", ("Y",), coordinate=True),
         KeySpec("t-coordinate", ("10",), coordinate=True)),
        {"N": 10000, "X": 128, "Y": 128}, {"beta": 0.1}),
    "shallow-water": PdebenchFile(
        "2D_rdb_NA_NA.h5", _DARUS + "133021", "2D/shallow-water/",
        "75d838c47aa410694bdc912ea7f22282", "multi",
        (KeySpec("data", ("T", "X", "Y", "1")), KeySpec("grid/x", ("X",), coordinate=True),
         KeySpec("grid/y", ("Y",), coordinate=True), KeySpec("grid/t", ("T",), coordinate=True)),
        {"N": 1000, "T": 101, "X": 128, "Y": 128}),
    "diffusion-reaction-2d": PdebenchFile(
        "2D_diff-react_NA_NA.h5", _DARUS + "133017", "2D/diffusion-reaction/",
        "b8d0b86064193195ddc30c33be5dc949", "multi",
        (KeySpec("data", ("T", "X", "Y", "2")), KeySpec("grid/x", ("X",), coordinate=True),
         KeySpec("grid/y", ("Y",), coordinate=True), KeySpec("grid/t", ("T",), coordinate=True)),
        {"N": 1000, "T": 101, "X": 128, "Y": 128}),
}

TASK_NAMES: tuple[str, ...] = tuple(FILES)
