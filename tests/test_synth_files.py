"""Synthetic files: upstream schema, attributes, time grids, determinism, atomic writes, errors."""
from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

import harness.data.synth as synth
from harness.data.catalog import FILES, TASK_NAMES
from harness.data.synth import writer
from harness.data.synth.grids import frame_times

DOMAINS = {"advection": (0.0, 1.0), "burgers": (0.0, 1.0), "diffusion-reaction-1d": (0.0, 1.0),
           "diffusion-sorption": (0.0, 1.0), "navier-stokes-1d": (-1.0, 1.0), "darcy": (0.0, 1.0),
           "shallow-water": (-2.5, 2.5), "diffusion-reaction-2d": (-1.0, 1.0)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return synth.generate_suite(tmp_path_factory.mktemp("tiny0"), size="tiny", seed=0,
                                progress=None)


def digest(path: Path) -> str:
    """Hash of every dataset's name, dtype, shape and bytes (attributes excluded)."""
    h = hashlib.sha256()

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            h.update(f"{name}|{obj.dtype}|{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj[()]).tobytes())

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return h.hexdigest()


def assert_has_times(times: np.ndarray, wanted, where: str) -> None:
    for t in wanted:
        assert np.min(np.abs(times - t)) <= 1e-6 * max(1.0, t), f"{where}: no frame at t={t}"


def assert_cell_centres(x: np.ndarray, task: str) -> None:
    lo, hi = DOMAINS[task]
    dx = (hi - lo) / len(x)
    assert np.allclose(x, lo + dx * (np.arange(len(x)) + 0.5), atol=1e-6)


def bind_axes(sizes: dict, axes: tuple, shape: tuple, where: str) -> None:
    """Check ``shape`` against symbolic ``axes``, binding symbols on first sight."""
    assert len(shape) == len(axes), f"{where}: rank {len(shape)} != {len(axes)} {axes}"
    for ax, n in zip(axes, shape):
        if ax.isdigit():
            assert n == int(ax), where
        elif ax.endswith("+1"):
            assert sizes.setdefault(ax[:-2], n - 1) == n - 1, where
        else:
            assert sizes.setdefault(ax, n) == n, where


@pytest.mark.parametrize("task", TASK_NAMES)
def test_file_matches_the_catalog_schema(tiny, task):
    spec, preset = FILES[task], synth.SIZES["tiny"][task]
    path = tiny[task]
    assert path.parent.is_dir() and path == path.parent / spec.filename
    assert str(path).endswith(spec.rel_path)
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        assert bool(attrs["synthetic"]) is True
        assert attrs["generator_version"] == synth.GENERATORS[task].VERSION
        assert int(attrs["seed"]) == 0 and attrs["size"] == "tiny"
        for k, v in spec.attrs.items():
            assert float(attrs[k]) == v
        sizes: dict[str, int] = {}
        if spec.layout == "single":
            assert set(f.keys()) == {k.key for k in spec.keys}
            for k in spec.keys:
                ds = f[k.key]
                assert ds.dtype == np.float32, k.key
                bind_axes(sizes, k.axes, ds.shape, f"{task}/{k.key}")
                assert np.all(np.isfinite(ds[()])), f"{task}/{k.key} has NaN/inf"
            assert sizes["N"] == preset["n"] and sizes["X"] == preset["nx"]
            if "nt" in preset:
                assert sizes["T"] == preset["nt"]
                frames = f["t-coordinate"][: sizes["T"]]
                assert np.all(np.diff(f["t-coordinate"][()]) > 0)
            x = f["x-coordinate"][()]
        else:
            groups = sorted(f.keys())
            assert groups == [f"{i:04d}" for i in range(preset["n"])]
            for name in groups:
                g = f[name]
                cfg = yaml.safe_load(g.attrs["config"])
                assert cfg["sample"] == int(name) and cfg["seed"] == 0
                for k in spec.keys:
                    ds = g[k.key]
                    assert ds.dtype == np.float32, f"{name}/{k.key}"
                    bind_axes(sizes, k.axes, ds.shape, f"{task}/{name}/{k.key}")
                    assert np.all(np.isfinite(ds[()])), f"{task}/{name}/{k.key} has NaN/inf"
            assert sizes["T"] == preset["nt"] and sizes["X"] == preset["nx"]
            frames = f["0000/grid/t"][()]
            x = f["0000/grid/x"][()]
            if "grid/y" in f["0000"]:
                assert np.array_equal(f["0000/grid/y"][()], x)
        assert_cell_centres(x, task)
        if task == "darcy":
            assert np.array_equal(f["y-coordinate"][()], x)
            assert f["t-coordinate"].shape == (10,)
        else:
            assert frames[0] == 0.0 and np.allclose(np.diff(frames), frames[1] - frames[0])
            assert_has_times(frames, synth.REQUIRED_TIMES[task], task)


def test_values_are_physically_sane(tiny):
    with h5py.File(tiny["diffusion-reaction-1d"], "r") as f:
        u = f["tensor"][()]
        assert u.min() >= 0 and u.max() <= 1
        assert np.allclose(u[:, 0].min(axis=-1), 0) and np.allclose(u[:, 0].max(axis=-1), 1)
        assert abs(f["t-coordinate"][29] - 0.29) < 1e-6  # ORCA's target frame index
    with h5py.File(tiny["diffusion-sorption"], "r") as f:
        d = np.stack([f[g]["data"][()] for g in f])
        assert d.min() >= 0 and d.max() <= 1
        assert np.all(np.ptp(d[:, 0], axis=1) == 0) and d[:, 0].max() <= 0.2  # flat IC ~ U(0, 0.2)
    with h5py.File(tiny["burgers"], "r") as f:
        u = f["tensor"][()]
        assert np.abs(u[:, -1] - u[:, -1].mean(axis=-1, keepdims=True)).max() < 1e-5
    with h5py.File(tiny["navier-stokes-1d"], "r") as f:
        assert f["density"][()].min() > 0 and f["pressure"][()].min() > 0
        rho0, p0 = f["density"][:, 0], f["pressure"][:, 0]
        assert 1 <= rho0.min() and rho0.max() <= 20 and 10 <= p0.min() and p0.max() <= 200
    with h5py.File(tiny["darcy"], "r") as f:
        assert set(np.unique(f["nu"][()])) <= {np.float32(0.1), np.float32(1.0)}
        assert f["tensor"][()].min() > 0
    with h5py.File(tiny["shallow-water"], "r") as f:
        h0 = np.stack([f[g]["data"][0] for g in f])
        assert set(np.unique(h0)) == {1.0, 2.0}


def test_generation_is_deterministic_per_seed(tiny, tmp_path):
    again = synth.generate_suite(tmp_path / "a", size="tiny", seed=0, progress=None)
    other = synth.generate_suite(tmp_path / "b", size="tiny", seed=1, progress=None)
    for task in TASK_NAMES:
        assert digest(again[task]) == digest(tiny[task]), task
        assert digest(other[task]) != digest(tiny[task]), task


def test_no_temporary_file_is_left_behind(tiny):
    root = tiny["advection"].parents[3]
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_failed_write_leaves_neither_final_nor_temporary_file(tmp_path, monkeypatch):
    def explode(f, spec, plan):
        f.create_dataset("partial", data=np.zeros(3, dtype=np.float32))
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "_write_single", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.generate("advection", tmp_path, size="tiny")
    folder = tmp_path / FILES["advection"].rel_dir
    assert list(folder.iterdir()) == []


def test_existing_files_are_kept_replaced_or_protected(tmp_path):
    path = synth.generate("darcy", tmp_path, size="tiny", seed=0)
    inode = path.stat().st_ino
    assert synth.generate("darcy", tmp_path, size="tiny", seed=0) == path
    assert path.stat().st_ino == inode  # up to date: kept
    synth.generate("darcy", tmp_path, size="tiny", seed=0, overwrite=True)
    assert path.stat().st_ino != inode  # rewritten
    synth.generate("darcy", tmp_path, size="tiny", seed=3)  # stale seed: regenerated
    with h5py.File(path, "r") as f:
        assert int(f.attrs["seed"]) == 3
    with h5py.File(path, "w") as f:  # stands in for a real download
        f.create_dataset("tensor", data=np.zeros((1, 1, 2, 2), dtype=np.float32))
    with pytest.raises(synth.NotSyntheticFile, match="not a synthetic file"):
        synth.generate("darcy", tmp_path, size="tiny")
    synth.generate("darcy", tmp_path, size="tiny", overwrite=True)
    with h5py.File(path, "r") as f:
        assert bool(f.attrs["synthetic"])


def test_suite_reports_progress_and_skips_up_to_date_files(tmp_path):
    lines: list[str] = []
    tasks = ["advection", "darcy"]
    out = synth.generate_suite(tmp_path, size="tiny", tasks=tasks, progress=lines.append)
    assert list(out) == tasks and all(p.exists() for p in out.values())
    synth.generate_suite(tmp_path, size="tiny", tasks=tasks, progress=lines.append)
    assert len(lines) == 4 and all("kept" in line for line in lines[2:])


def test_unknown_names_raise_value_error_listing_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'nope'.*advection.*diffusion-reaction-2d"):
        synth.generate("nope", tmp_path)
    with pytest.raises(ValueError, match=r"'huge'.*tiny, small, medium, large"):
        synth.generate("advection", tmp_path, size="huge")
    with pytest.raises(ValueError, match="'bad'"):
        synth.generate_suite(tmp_path, size="tiny", tasks=["advection", "bad"], progress=None)
    assert not any(tmp_path.rglob("*.hdf5"))  # validated before anything was generated


@pytest.mark.parametrize("size", list(synth.SIZES))
def test_every_preset_is_complete_and_keeps_the_needed_times(size):
    preset = synth.SIZES[size]
    assert set(preset) == set(TASK_NAMES)
    for task, p in preset.items():
        assert p["n"] % 10 == 0, f"{size}/{task}: n={p['n']} gives fractional 10 % splits"
        if "nt" in p:
            assert_has_times(frame_times(synth.GENERATORS[task].T_END, p["nt"]),
                             synth.REQUIRED_TIMES[task], f"{size}/{task}")
    assert preset["shallow-water"]["nx"] % 2 == 0  # the quadrant solve needs an even grid
    rd = frame_times(1.0, preset["diffusion-reaction-1d"]["nt"])
    assert abs(rd[29] - 0.29) < 1e-12  # ORCA reads frame index 29


def test_batching_does_not_change_samples():
    from harness.data.synth import advection, darcy, fitzhugh_nagumo

    for module, kwargs in [(advection, {"nx": 32, "nt": 5}), (darcy, {"nx": 8}),
                           (fitzhugh_nagumo, {"nx": 8, "nt": 3})]:
        plan = module.generate(np.random.default_rng(7), 6, **kwargs)
        whole = plan.solve(np.arange(6))
        parts = [plan.solve(np.array(b)) for b in ([4, 5], [0, 1, 2, 3])]
        for key, values in whole.items():
            joined = np.concatenate([parts[1][key], parts[0][key]])
            assert np.allclose(joined, values, rtol=0, atol=1e-12), (module.__name__, key)


def test_samples_land_at_their_index_when_batches_are_not_contiguous(tmp_path):
    # the CFD generator batches samples by wave speed, i.e. out of index order
    from harness.data.synth import navier_stokes_1d

    plan = navier_stokes_1d.generate(np.random.default_rng(3), 10, 16, 3, chunk=3)
    assert any(np.any(np.diff(b) != 1) for b in plan.batches)
    spec = FILES["navier-stokes-1d"]
    path = writer.write(tmp_path / spec.filename, spec, plan, {"synthetic": True})
    x = navier_stokes_1d.cell_centres(-1.0, 1.0, 16)
    rho, v, p = navier_stokes_1d.sample_ic(np.random.default_rng(3), 10, x)
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["density"][:, 0], rho.astype(np.float32))
        assert np.array_equal(f["Vx"][:, 0], v.astype(np.float32))
        assert np.array_equal(f["pressure"][:, 0], p.astype(np.float32))
