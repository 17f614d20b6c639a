"""NAS-Bench-360 readers on hand-made files in the upstream formats: values, splits, errors."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import nb360_fixtures as fx
from harness.data.errors import CorruptFile, MissingDataFile, SchemaMismatch
from harness.data.nb360 import audio
from harness.data.nb360.lazy import SampleArray
from harness.suites import get_suite

T = get_suite("nasbench360")


def test_cifar100_pickles_normalised_and_carved(tmp_path):
    train, test = fx.cifar(tmp_path, n_train=20, n_test=10)
    d = T["cifar100"].load(tmp_path)
    assert d.source == "real"
    assert {s: len(d.x[s]) for s in d.x} == {"train": 18, "val": 2, "test": 10}
    assert not set(d.indices["train"]) & set(d.indices["val"])
    i = int(d.indices["train"][3])
    x = d.x["train"][3]
    # pixel (c=1, r=2, k=5) of image i is (i + 1 + 2 + 5) % 256, then /255, minus mean, over std
    assert x[1, 2, 5] == pytest.approx(((i + 8) / 255 - 0.4867) / 0.2565, rel=1e-5)
    assert d.y["train"][3] == i % 100 and d.y["train"].dtype == np.int64
    np.testing.assert_array_equal(d.y["test"], np.arange(10) % 100)


def test_spherical_gzip_pickle_scaled_by_255(tmp_path):
    src = fx.spherical(tmp_path)
    d = T["spherical"].load(tmp_path, splits=("test",))
    np.testing.assert_allclose(d.x["test"], src["test"]["images"] / 255.0, rtol=1e-6)
    assert d.x["test"].dtype == np.float32 and d.x["test"].shape == (20, 3, 8, 8)


def test_ninapro_swaps_axes_and_uses_the_published_val_file(tmp_path):
    src = fx.ninapro(tmp_path)
    d = T["ninapro"].load(tmp_path)
    x, _ = src["val"]
    assert d.x["val"].shape == (12, 1, 16, 52)
    assert d.x["val"][4, 0, 3, 7] == x[4, 7, 3]        # (N, 52, 16) → (N, 1, 16, 52)
    np.testing.assert_array_equal(d.y["test"], np.arange(12) % 18)


def test_satellite_dict_npy_labels_shifted_no_normalisation(tmp_path):
    fx.satellite(tmp_path)
    d = T["satellite"].load(tmp_path)
    assert d.x["test"].shape == (10, 1, 46) and d.x["test"][2, 0, 5] == 2 * 46 + 5
    np.testing.assert_array_equal(d.y["test"], np.arange(10) % 24)    # 1-based → 0-based
    assert len(d.x["train"]) + len(d.x["val"]) == 30


@pytest.mark.parametrize("compressed", [False, True])
def test_deepsea_npz_transposed_eager_and_lazy(tmp_path, monkeypatch, compressed):
    src = fx.deepsea(tmp_path, compressed=compressed)
    eager = T["deepsea"].load(tmp_path)
    np.testing.assert_array_equal(eager.x["val"], np.transpose(src["x_val"], (0, 2, 1)))
    np.testing.assert_array_equal(eager.y["test"], src["y_test"])
    monkeypatch.setenv("HARNESS_EAGER_BYTES", "0")
    lazy = T["deepsea"].load(tmp_path)
    assert isinstance(lazy.x["test"], SampleArray) and lazy.x["test"].shape == (8, 4, 20)
    np.testing.assert_array_equal(lazy.x["test"][[5, 1, 3]], eager.x["test"][[5, 1, 3]])
    np.testing.assert_array_equal(lazy.x["test"][2:4], eager.x["test"][2:4])
    np.testing.assert_array_equal(np.asarray(lazy.x["test"]), eager.x["test"])


def test_ecg_record_split_zscore_and_class_strides(tmp_path):
    from sklearn.model_selection import train_test_split

    src = fx.ecg(tmp_path)
    d = T["ecg"].load(tmp_path)
    n = len(src["data"])
    _, test = train_test_split(np.arange(n), test_size=0.1, random_state=0)
    assert set(d.aux["test"]["record"]) == set(test)                 # record-level, as upstream
    assert not set(d.aux["train"]["record"]) & set(d.aux["val"]["record"])
    strides = {0: 500, 1: 83, 2: 250, 3: 25}
    for s in d.x:
        rec, start = d.aux[s]["record"], d.aux[s]["start"]
        for r in set(rec):
            lab = "NAO~".index(src["label"][r])
            want = np.arange(0, len(src["data"][r]) - 1000, strides[lab])
            np.testing.assert_array_equal(np.sort(start[rec == r]), want)
            assert (d.y[s][rec == r] == lab).all()
    k = 0
    r, st = d.aux["train"]["record"][k], d.aux["train"]["start"][k]
    raw = src["data"][r]
    np.testing.assert_allclose(d.x["train"][k, 0], ((raw - raw.mean()) / raw.std())[st:st + 1000],
                               rtol=1e-5, atol=1e-6)
    windows_of_3 = sum(int((d.aux[s]["record"] == 3).sum()) for s in d.x)
    assert windows_of_3 == 1                             # 1,001 samples: range(0, 1) → one window


@pytest.mark.parametrize("v73", [False, True])
def test_darcy_mat_v5_and_v73_normalised_with_grid(tmp_path, v73):
    src = fx.darcy(tmp_path, v73=v73)
    d = T["darcy-flow"].load(tmp_path)
    tr = d.indices["train"]
    a = src["smooth1"]
    mean, std = a[tr].mean(0), a[tr].std(0, ddof=1)
    np.testing.assert_allclose(d.x["test"][1, 0], (src["smooth2"][1] - mean) / (std + 1e-5), rtol=1e-5)
    g = np.linspace(0, 1, 9)
    np.testing.assert_allclose(d.x["test"][0, 1, 4], g)            # channel 1 varies along columns
    np.testing.assert_allclose(d.x["test"][0, 2, :, 4], g)         # channel 2 along rows
    np.testing.assert_allclose(d.y["test"][:, 0], 2 * src["smooth2"], rtol=1e-6)   # physical units
    np.testing.assert_allclose(d.attrs["y_mean"][0], 2 * a[tr].mean(0), rtol=1e-5)


def test_darcy_real_grid_is_strided_to_85(tmp_path):
    from harness.data.nb360.read_darcy import darcy_stride

    assert darcy_stride(421, 421, 5, "f") == 5
    assert darcy_stride(169, 421, 5, "f") == 2          # 169 = 2·84 + 1 → 85 points
    assert darcy_stride(43, 421, 5, "f") == 1           # small stand-in used as is
    with pytest.raises(SchemaMismatch, match="grid of 100 points"):
        darcy_stride(100, 421, 5, "f")


def test_psicov_channels_padding_clipping_and_lengths(tmp_path):
    fx.psicov(tmp_path)
    crop = 64
    (tmp_path / "protein/deepcov.lst.synthetic.json").write_text(json.dumps(
        {"synthetic": True, "complete": True, "crop": crop, "files": {}}))
    d = T["psicov"].load(tmp_path)
    assert d.source == "synthetic" and d.x["test"].shape == (2, 57, crop, crop)
    feats = pickle.loads((tmp_path / "protein/psicov/features/t1.pkl").read_bytes())
    x = d.x["test"][0]
    assert x[0, 5 + 2, 5 + 9] == pytest.approx(feats["ss"][0][9], rel=1e-6)    # row copy
    assert x[1, 5 + 2, 5 + 9] == pytest.approx(feats["ss"][0][2], rel=1e-6)    # column copy
    assert x[6, 5 + 1, 5 + 3] == pytest.approx(feats["pssm"][3, 0], rel=1e-6)
    assert x[54, 5 + 4, 5 + 11] == pytest.approx(feats["ccmpred"][4, 11], rel=1e-6)
    assert x[56, 5 + 4, 5 + 11] == pytest.approx(feats["potential"][4, 11], rel=1e-6)
    assert (x[:, :5] == 0).all() and (x[:, 35:] == 0).all()       # zero padding, L = 30
    y = d.y["test"][0, 0]
    assert y[5 + 2, 5 + 20] == pytest.approx(27.0) and (y[:5] == 100).all()   # raw, padded 100
    assert y[5 + 3, 5 + 3] == pytest.approx(1.5)       # diagonal filled from its neighbours
    assert d.y["train"].max() == pytest.approx(16.0)   # training targets clipped at 16 Å
    np.testing.assert_array_equal(d.aux["test"]["length"], [30, 27])


def test_cosmic_crop_ignore_and_sky_on_train_only(tmp_path):
    fx.cosmic(tmp_path, size=192, sky=[10.0, 20.0])
    d = T["cosmic"].load(tmp_path)
    assert d.x["test"].shape == (4, 1, 128, 128)
    raw = np.load(tmp_path / "cosmic/npy_test/f435w/10760/2/2_img1.npy")
    np.testing.assert_array_equal(d.x["test"][1, 0], raw[0, 64:192, 64:192])     # no sky on test
    np.testing.assert_array_equal(d.y["test"][1, 0], raw[1, 64:192, 64:192])
    np.testing.assert_array_equal(d.aux["test"]["ignore"][1, 0], raw[2, 64:192, 64:192])
    k = int(d.indices["train"][0])
    base = float(k)                                        # the image is constant k
    sky = [10.0, 20.0][k % 2]
    added = d.x["train"][0, 0, 0, 0] - base
    assert -0.9 * sky <= added <= 3.0 * sky and added != 0


def test_fsd_chunks_paths_clips_and_features(tmp_path):
    fx.fsd(tmp_path)
    d = T["fsd50k"].load(tmp_path)
    assert d.x["train"].shape == (3, 1, 96, 102) and d.x["test"].shape == (3, 1, 96, 102)
    np.testing.assert_array_equal(d.aux["test"]["clip"], [0, 1, 1])
    assert d.y["test"][1].nonzero()[0].tolist() == [0, 2] and d.y["test"][2].nonzero()[0].tolist() == [0, 2]
    assert d.y["train"][1].nonzero()[0].tolist() == [1, 2]
    assert (d.x["test"][:, 0, :, 101] == 0).all()           # the one-frame zero pad
    import scipy.io.wavfile

    rate, pcm = scipy.io.wavfile.read(tmp_path / "fsd/wav/c0.wav")
    np.testing.assert_allclose(d.x["test"][0, 0, :, :101], audio.features(pcm / 32768.0), rtol=1e-5, atol=1e-4)
    again = T["fsd50k"].load(tmp_path, splits=("train",))
    np.testing.assert_array_equal(again.x["train"], d.x["train"])   # the training set is fixed


def test_mel_features_match_an_independent_stft():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, 22050).astype(np.float32)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(661) / 661)       # periodic Hann
    full = np.zeros(1920)
    full[(1920 - 661) // 2:(1920 - 661) // 2 + 661] = win
    xp = np.pad(x.astype(np.float64), 960, mode="reflect")
    frames = xp[np.arange(1920)[None] + 220 * np.arange(101)[:, None]] * full
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = audio.mel_filterbank().T.astype(np.float64) @ power.T
    np.testing.assert_allclose(audio.mel_power(x), mel, rtol=1e-3, atol=1e-6 * mel.max())
    fb = audio.mel_filterbank()
    assert fb.shape == (961, 96) and fb.max() <= 1.0 and (fb.sum(0) > 0).all()
    db = audio.features(x)
    assert db.shape == (96, 101) and abs(db.mean()) < 1e-4


# ----------------------------------------------------------------------------- bad input
def test_missing_files_name_paths_and_commands(tmp_path):
    with pytest.raises(MissingDataFile) as e:
        T["ninapro"].load(tmp_path)
    msg = str(e.value)
    assert "ninaPro/ninapro_train.npy" in msg and "synth --suite nasbench360" in msg
    assert "download --suite nasbench360" in msg


def test_wrong_key_names_file_key_and_found_keys(tmp_path):
    (tmp_path / "cifar-100-python").mkdir()
    for name in ("train", "test"):
        with open(tmp_path / "cifar-100-python" / name, "wb") as f:
            pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, f)
    with pytest.raises(SchemaMismatch, match=r"cifar-100-python/train: key 'fine_labels' is missing \(found keys \['data', 'labels'\]\)"):
        T["cifar100"].load(tmp_path)


def test_wrong_shape_names_expected_and_found(tmp_path):
    fx.ninapro(tmp_path)
    np.save(tmp_path / "ninaPro/ninapro_test.npy", np.zeros((12, 16, 52)))
    with pytest.raises(SchemaMismatch, match=r"ninapro_test.npy: shape \(12, 16, 52\), expected \(N, 52, 16\)"):
        T["ninapro"].load(tmp_path)


def test_labels_out_of_range_are_reported(tmp_path):
    fx.satellite(tmp_path)
    np.save(tmp_path / "satellite_test.npy", {"data": np.zeros((3, 46)), "label": np.array([0, 1, 2])})
    with pytest.raises(SchemaMismatch, match=r"satellite_test.npy: 'label' \(1-based\) spans 0..2, expected class indices 1..24"):
        T["satellite"].load(tmp_path)


def test_unknown_ecg_label_names_record(tmp_path):
    fx.ecg(tmp_path, lengths=(1500, 1500), labels=["N", "X"])
    with pytest.raises(SchemaMismatch, match=r"label 1 is 'X', expected one of"):
        T["ecg"].load(tmp_path)


def test_truncated_and_foreign_files_are_corrupt_file_errors(tmp_path):
    fx.satellite(tmp_path)
    raw = (tmp_path / "satellite_train.npy").read_bytes()
    (tmp_path / "satellite_train.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFile, match="satellite_train.npy"):
        T["satellite"].load(tmp_path)
    (tmp_path / "s2_cifar100.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorruptFile, match="s2_cifar100.gz"):
        T["spherical"].load(tmp_path)
    (tmp_path / "deepsea_filtered.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(CorruptFile, match="deepsea_filtered.npz"):
        T["deepsea"].load(tmp_path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, protocol):
    fx.ecg(tmp_path)
    src = pickle.loads((tmp_path / "challenge2017.pkl").read_bytes())
    src["data"] = np.array([np.asarray(r, dtype=np.float32) for r in src["data"]] + [np.zeros(3)],
                           dtype=object)[:-1]
    (tmp_path / "challenge2017.pkl").write_bytes(pickle.dumps(src, protocol=protocol))
    d = T["ecg"].load(tmp_path, splits=("test",))
    assert len(d.x["test"]) > 0


def test_pickles_that_would_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "challenge2017.pkl", "wb") as f:
        pickle.dump({"data": Evil(), "label": ["N"]}, f)
    with pytest.raises(CorruptFile, match="refusing to load builtins.print"):
        T["ecg"].load(tmp_path)


def test_wrong_sample_rate_and_unknown_label_in_fsd(tmp_path):
    import scipy.io.wavfile

    fx.fsd(tmp_path)
    scipy.io.wavfile.write(tmp_path / "fsd/wav/c0.wav", 16000, np.zeros(16000, np.int16))
    with pytest.raises(SchemaMismatch, match=r"c0.wav: sample rate 16000 Hz, expected 22050"):
        T["fsd50k"].load(tmp_path, splits=("test",))
    (tmp_path / "fsd/chunks/eval.csv").write_text('files,labels,ext\ndata/wav/c1.wav,"nope",1\n')
    with pytest.raises(SchemaMismatch, match=r"eval.csv: row 0 has label 'nope'"):
        T["fsd50k"].load(tmp_path, splits=("test",))


def test_psicov_feature_out_of_range_names_file(tmp_path):
    fx.psicov(tmp_path)
    path = tmp_path / "protein/psicov/features/t2.pkl"
    feats = pickle.loads(path.read_bytes())
    feats["ccmpred"][0, 0] = 150.0
    path.write_bytes(pickle.dumps(feats))
    with pytest.raises(SchemaMismatch, match=r"t2.pkl: feature values span .*150.*strictly inside"):
        T["psicov"].load(tmp_path, splits=("test",))


def test_cosmic_listed_file_missing(tmp_path):
    fx.cosmic(tmp_path, size=192)
    (tmp_path / "cosmic/npy_test/f435w/10760/2/1_img0.npy").unlink()
    with pytest.raises(SchemaMismatch, match=r"1_img0.npy: listed in the Cosmic file list but missing"):
        T["cosmic"].load(tmp_path, splits=("test",))


def test_stale_or_incomplete_synthetic_marker_raises(tmp_path):
    fx.satellite(tmp_path)
    marker = tmp_path / "satellite_train.npy.synthetic.json"
    marker.write_text(json.dumps({"synthetic": True, "complete": True,
                                  "files": {"satellite_train.npy": 12}}))
    with pytest.raises(SchemaMismatch, match="recorded 12: the file was replaced"):
        T["satellite"].load(tmp_path)
    marker.write_text(json.dumps({"synthetic": True, "complete": False, "files": {}}))
    with pytest.raises(SchemaMismatch, match="did not finish"):
        T["satellite"].load(tmp_path)


def test_unloaded_split_is_not_readable_and_test_not_read_in_search(tmp_path, monkeypatch):
    fx.satellite(tmp_path)
    (tmp_path / "satellite_test.npy").write_bytes(b"garbage: reading it would fail")
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HARNESS_DATA_AUDIT", str(audit))
    d = T["satellite"].load(tmp_path, splits=("train", "val"))
    with pytest.raises(KeyError, match="split 'test'"):
        d.split("test")
    assert json.loads(audit.read_text().splitlines()[0])["splits"] == ["train", "val"]
