"""Task construction and splits on small hand-made files of both layouts."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from harness.data.errors import CorruptFile, MissingDataFile, SchemaMismatch
from harness.data.readers import split_indices
from harness.suites.pdebench import TASKS
from h5fixtures import (multi_value, single_value, small_task, write_multi_2d,
                        write_single_1d)


def test_single_layout_construction_stride_time_and_first_10pct_test(tmp_path):
    write_single_1d(tmp_path, n=20, frames=5, nx=16, dt=0.5)      # t = 0, .5, 1, 1.5, 2
    task = small_task("advection", N=20, T=5, X=16)                 # stride 4 -> 4 points
    data = task.load(tmp_path)
    assert data.source == "real"
    xt, yt = data.split("test")
    assert list(data.indices["test"]) == [0, 1]                     # ORCA: first 10 %
    np.testing.assert_array_equal(xt[:, 0], single_value(np.array([[0], [1]]), 0, np.arange(0, 16, 4)))
    np.testing.assert_array_equal(yt[:, 0], single_value(np.array([[0], [1]]), 4, np.arange(0, 16, 4)))
    assert xt.dtype == np.float32 and xt.shape == (2, 1, 4)
    # each row of train/val is the sample its index says
    for s in ("train", "val"):
        x, y = data.split(s)
        idx = data.indices[s]
        np.testing.assert_array_equal(x[:, 0, 1], single_value(idx, 0, 4))
        np.testing.assert_array_equal(y[:, 0, 1], single_value(idx, 4, 4))


def test_finer_file_is_subsampled_to_the_task_resolution(tmp_path):
    write_single_1d(tmp_path, n=10, frames=5, nx=32)
    task = small_task("advection", N=20, T=5, X=16)                 # wants 16/4 = 4 points
    x, _ = task.load(tmp_path, splits=("test",)).split("test")
    np.testing.assert_array_equal(x[0, 0], single_value(0, 0, np.arange(0, 32, 8)))


def test_splits_disjoint_sizes_and_deterministic():
    for n, rule in ((10000, "first"), (1000, "last"), (200, "first"), (30, "last")):
        a = split_indices(n, 0.1, rule, 0.1, 0)
        b = split_indices(n, 0.1, rule, 0.1, 0)
        for s in ("train", "val", "test"):
            np.testing.assert_array_equal(a.get(s), b.get(s))
        sets = [set(a.train), set(a.val), set(a.test)]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        assert len(sets[0] | sets[1] | sets[2]) == n
        assert len(a.test) == int(n * 0.1)
        assert len(a.val) == round((n - int(n * 0.1)) * 0.1)
        if rule == "first":
            assert list(a.test) == list(range(int(n * 0.1)))
        else:
            assert list(a.test) == list(range(n - int(n * 0.1), n))
    c = split_indices(200, 0.1, "first", 0.1, 1)
    assert set(c.val) != set(split_indices(200, 0.1, "first", 0.1, 0).val)
    # the real sizes: 9000/1000 and 900/100 before the validation carve-out
    r = split_indices(10000, 0.1, "first", 0.1, 0)
    assert (len(r.train), len(r.val), len(r.test)) == (8100, 900, 1000)


def test_multi_layout_sorted_groups_last_10pct_and_cross_channel_target(tmp_path):
    write_multi_2d(tmp_path, groups=20, frames=3, n=8, channels=2, t_end=5.0)
    task = small_task("diffusion-reaction-2d", N=20, T=3, X=8, Y=8)
    data = task.load(tmp_path)
    xt, yt = data.split("test")
    assert xt.shape == (2, 1, 8, 8)
    # test = the last 10 % of the sorted seed names: groups 18, 19
    assert xt[0, 0, 0, 0] == multi_value(18, 0, 0, 0, 0)
    assert xt[1, 0, 3, 5] == multi_value(19, 0, 3, 5, 0)
    # the target is channel 1 (v) at t = 5 (last frame), the input channel 0 (u) at t = 0
    assert yt[1, 0, 3, 5] == multi_value(19, 2, 3, 5, 1)
    xtr, _ = data.split("train")
    groups = xtr[:, 0, 0, 0] // 10000
    np.testing.assert_array_equal(np.sort(groups), groups)
    assert set(groups.astype(int)) <= set(range(18))


def test_1d_cfd_concatenates_fields_channel_major_and_zscores_on_train_inputs(tmp_path):
    write_single_1d(tmp_path, "navier-stokes-1d", n=30, frames=3, nx=4, dt=0.5,
                    keys=("density", "pressure", "Vx"))
    task = small_task("navier-stokes-1d", N=30, T=3, X=4)
    task = dataclasses.replace(task, construction=dataclasses.replace(task.construction,
                                                                      zscore=False))
    raw = task.load(tmp_path)
    x, y = raw.split("train")
    assert x.shape[1:] == (1, 12)
    # [rho(4) | p(4) | v(4)]: the keys differ by 0.25 in the fixture
    np.testing.assert_allclose(x[:, 0, 4] - x[:, 0, 0], 0.25)
    np.testing.assert_allclose(x[:, 0, 8] - x[:, 0, 0], 0.5)
    np.testing.assert_allclose(y[:, 0, 0] - x[:, 0, 0], 200.0)     # frame 2 (t=1.0) vs 0
    z = small_task("navier-stokes-1d", N=30, T=3, X=4).load(tmp_path)
    zx, zy = z.split("train")
    np.testing.assert_allclose(zx.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(zx.std(0, ddof=1), 1.0, atol=1e-3)
    mean, std = x.mean(0), x.std(0, ddof=1)
    np.testing.assert_allclose(zy, (y - mean) / (std + 1e-5), rtol=1e-5, atol=1e-4)
    tx, _ = z.split("test")                                         # same statistics on test
    rx, _ = raw.split("test")
    np.testing.assert_allclose(tx, (rx - mean) / (std + 1e-5), rtol=1e-5, atol=1e-4)


def test_darcy_reads_coefficient_as_input_and_solution_as_target(tmp_path):
    spec = TASKS["darcy"].file
    path = tmp_path / spec.rel_path
    path.parent.mkdir(parents=True)
    n = 10
    nu = np.arange(n * 8 * 8, dtype=np.float32).reshape(n, 8, 8)
    with h5py.File(path, "w") as f:
        f["nu"] = nu
        f["tensor"] = (-nu)[:, None]
        f["x-coordinate"] = np.linspace(0, 1, 8, dtype=np.float32)
        f["y-coordinate"] = np.linspace(0, 1, 8, dtype=np.float32)
        f["t-coordinate"] = np.zeros(10, dtype=np.float32)
    task = small_task("darcy", N=10, X=8, Y=8)                       # stride 2 -> 4x4
    x, y = task.load(tmp_path, splits=("test",)).split("test")
    np.testing.assert_array_equal(x[0, 0], nu[0, ::2, ::2])
    np.testing.assert_array_equal(y[0, 0], -nu[0, ::2, ::2])


def test_unloaded_split_is_not_readable(tmp_path):
    write_single_1d(tmp_path, n=20)
    data = small_task("advection", N=20, T=5, X=16).load(tmp_path, splits=("train", "val"))
    assert "test" not in data.x
    with pytest.raises(KeyError, match="was not loaded"):
        data.split("test")


# ------------------------------------------------------------------ bad input messages
def test_missing_file_names_expected_path_and_commands(tmp_path):
    with pytest.raises(MissingDataFile) as e:
        TASKS["burgers"].load(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / TASKS["burgers"].file.rel_path) in msg
    assert "python -m harness.data synth" in msg and "python -m harness.data download" in msg


def test_wrong_key_names_file_key_and_found_keys(tmp_path):
    path = write_single_1d(tmp_path, keys=("solution",))
    with pytest.raises(SchemaMismatch) as e:
        small_task("advection", N=20, T=5, X=16).load(tmp_path)
    msg = str(e.value)
    assert str(path) in msg and "'tensor'" in msg and "solution" in msg


def test_wrong_dtype_names_expected_and_found(tmp_path):
    path = write_single_1d(tmp_path, dtype="float64")
    with pytest.raises(SchemaMismatch) as e:
        small_task("advection", N=20, T=5, X=16).load(tmp_path)
    assert str(path) in str(e.value) and "float64" in str(e.value) and "float32" in str(e.value)


def test_wrong_rank_names_shape_and_axes(tmp_path):
    path = TASKS["advection"].file
    p = tmp_path / path.rel_path
    p.parent.mkdir(parents=True)
    with h5py.File(p, "w") as f:
        f["tensor"] = np.zeros((20, 16), np.float32)
        f["t-coordinate"] = np.zeros(3, np.float32)
    with pytest.raises(SchemaMismatch) as e:
        small_task("advection", N=20, T=5, X=16).load(tmp_path)
    assert "(20, 16)" in str(e.value) and "rank" in str(e.value)


def test_missing_time_names_the_wanted_time(tmp_path):
    write_single_1d(tmp_path, frames=3, dt=0.5)                  # t up to 1.0 only
    with pytest.raises(SchemaMismatch) as e:
        small_task("advection", N=20, T=3, X=16).load(tmp_path)
    assert "t=2" in str(e.value) and "t-coordinate" in str(e.value)


def test_truncated_hdf5_is_a_corrupt_file_error(tmp_path):
    path = write_single_1d(tmp_path, n=200, nx=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile) as e:
        small_task("advection", N=200, T=5, X=64).load(tmp_path)
    assert str(path) in str(e.value)


def test_nan_values_are_reported(tmp_path):
    path = write_single_1d(tmp_path)
    with h5py.File(path, "r+") as f:
        f["tensor"][5, 4, 4] = np.nan      # a point the task reads (stride 4)
    with pytest.raises(SchemaMismatch, match="NaN"):
        small_task("advection", N=20, T=5, X=16).load(tmp_path)


def test_task_versions_are_distinct_and_change_with_construction():
    versions = {t.version for t in TASKS.values()}
    assert len(versions) == len(TASKS)
    t = TASKS["advection"]
    changed = dataclasses.replace(t, construction=dataclasses.replace(t.construction,
                                                                       target_time=1.0))
    assert changed.version != t.version
    assert dataclasses.replace(t).version == t.version
