"""FSD50K features as the reference code computes them (ORCA/RECRAFT ``AudioParser``, mel branch).

A clip chunk (mono, 22,050 Hz) becomes a 96-band mel spectrogram: torchaudio's
``MelSpectrogram(sample_rate=22050, n_fft=1920, win_length=661, hop_length=220, n_mels=96)``
(periodic Hann window, centred reflect padding, power 2, HTK mel scale, no filter
normalisation), then ``librosa.power_to_db`` (ref 1, amin 1e-10, top_db 80), plus 75 (half the
parser's ``top_db`` of 150), minus its own mean. Neither torchaudio nor librosa is a dependency
here; this module computes the same quantities with ``torch.stft`` and NumPy.

Training-time transforms (``SpecAugment``, random crop, background mixing) are here too, driven
by an explicit ``np.random.Generator`` so a training set is reproducible.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 22050
N_FFT = 1920                 # 96 * 20
WIN_LENGTH = 661             # int(22050 * 0.03)
HOP_LENGTH = 220             # int(22050 * 0.01)
N_MELS = 96
FRAMES = 101                 # a 1-s chunk with centred frames
TOP_DB_OFFSET = 75.0         # AudioParser.top_db / 2


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, sample_rate: int = SAMPLE_RATE,
                   n_mels: int = N_MELS) -> np.ndarray:
    """(n_freqs, n_mels) triangular HTK filters from 0 Hz to sample_rate // 2, unnormalised."""
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sample_rate // 2)), n_mels + 2)
    f_pts = _mel_to_hz(m_pts)
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


_FB: np.ndarray | None = None


def mel_power(audio: np.ndarray) -> np.ndarray:
    """(n_mels, frames) mel power spectrogram of a mono float signal; (B, n_mels, frames) for a
    (B, samples) batch of equal-length signals."""
    import torch

    global _FB
    if _FB is None:
        _FB = mel_filterbank()
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    window = torch.hann_window(WIN_LENGTH)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a 1-s chunk is tiny: extra threads only contend (20x slower)
    try:
        spec = torch.stft(x, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=window,
                          center=True, pad_mode="reflect", normalized=False, onesided=True,
                          return_complex=True).abs().pow(2.0)
        return (torch.from_numpy(_FB).T @ spec).numpy()
    finally:
        torch.set_num_threads(threads)


def power_to_db(power: np.ndarray, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """librosa's ``power_to_db`` with ``ref=1``."""
    log_spec = 10.0 * np.log10(np.maximum(amin, power))
    return np.maximum(log_spec, log_spec.max() - top_db)


def _finish(power: np.ndarray) -> np.ndarray:
    spec = power_to_db(power).astype(np.float32) + np.float32(TOP_DB_OFFSET)
    return spec - spec.mean()


def features(audio: np.ndarray) -> np.ndarray:
    """The parser's float32 (96, frames) feature of a chunk."""
    return _finish(mel_power(audio))


def features_many(audios: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`features` of several chunks, one batched STFT per group of equal lengths."""
    out: list[np.ndarray | None] = [None] * len(audios)
    by_len: dict[int, list[int]] = {}
    for i, a in enumerate(audios):
        by_len.setdefault(len(a), []).append(i)
    for same in by_len.values():
        for lo in range(0, len(same), 32):   # 32 one-second chunks: ~25 MB of spectra at a time
            idx = same[lo:lo + 32]
            power = mel_power(np.stack([audios[i] for i in idx]))
            for k, i in enumerate(idx):
                out[i] = _finish(power[k])
    return out  # type: ignore[return-value]


def tile_to(audio: np.ndarray, min_samples: int = SAMPLE_RATE) -> np.ndarray:
    """Upstream ``load_audio``: a chunk shorter than ``min_samples`` is tiled up to that length."""
    if len(audio) < min_samples:
        reps = min_samples // len(audio) + 1
        return np.tile(audio, reps)[:min_samples]
    return audio


def pad_to(spec: np.ndarray, size: int = FRAMES, mode: str = "constant") -> np.ndarray:
    """``PadToSize``: centre-pad the time axis to ``size`` with the minimum or by wrapping."""
    if spec.shape[1] >= size:
        return spec
    padding = size - spec.shape[1]
    width = ((0, 0), (padding // 2, padding - padding // 2))
    if mode == "constant":
        return np.pad(spec, width, "constant", constant_values=spec.min())
    return np.pad(spec, width, "wrap")


def spec_augment(spec: np.ndarray, rng: np.random.Generator, num_mask: int = 2,
                 freq_masking: float = 0.15, time_masking: float = 0.20) -> np.ndarray:
    """``SpecAugment``: 1..num_mask frequency and time bands set to the spectrogram's minimum."""
    spec = spec.copy()
    value = spec.min()
    for _ in range(int(rng.integers(1, num_mask + 1))):
        n_f, n_t = spec.shape
        nf = int(rng.uniform(0.0, freq_masking) * n_f)
        f0 = int(rng.uniform(0.0, n_f - nf))
        spec[f0:f0 + nf, :] = value
        nt = int(rng.uniform(0.0, time_masking) * n_t)
        t0 = int(rng.uniform(0.0, n_t - nt))
        spec[:, t0:t0 + nt] = value
    return spec


def train_transform(spec: np.ndarray, rng: np.random.Generator, spec_prob: float = 0.5,
                    wrap_prob: float = 0.5) -> np.ndarray:
    """Upstream's training chain: pad (wrap or constant), SpecAugment with ``spec_prob``,
    random crop to 101 frames."""
    spec = pad_to(spec, FRAMES, "wrap" if rng.random() < wrap_prob else "constant")
    if rng.random() < spec_prob:
        spec = spec_augment(spec, rng)
    if spec.shape[1] > FRAMES:
        start = int(rng.integers(0, spec.shape[1] - FRAMES + 1))
        spec = spec[:, start:start + FRAMES]
    return spec


def pad_right(spec: np.ndarray) -> np.ndarray:
    """The final ``F.pad(real, (0, 1))``: one zero frame on the right (101 → 102)."""
    return np.pad(spec, ((0, 0), (0, 1)))
