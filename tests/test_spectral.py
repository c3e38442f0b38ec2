"""The short-time Wiener filter (spectral.py): against a frame-by-frame loop, perfect reconstruction
where there is no noise, and the noise it takes out of a tone."""

from __future__ import annotations

import numpy as np
import pytest

from upscale_audio import spectral


def _wiener_loop(x: np.ndarray, v: np.ndarray, frame: int) -> np.ndarray:
    """The same filter written plainly: one frame at a time on the absolute grid, overlap-added."""
    hop, T = frame // 4, len(x)
    chunks = -(-T // hop)
    left, right = frame - hop, chunks * hop - T + frame - hop
    xp, vp = np.pad(x, (left, right), mode="reflect"), np.pad(v, (left, right), mode="reflect")
    w = np.hanning(frame + 1)[:-1]
    acc, norm = np.zeros(len(xp)), np.zeros(len(xp))
    for f in range(chunks + 3):
        seg = slice(f * hop, f * hop + frame)
        X = np.fft.rfft(xp[seg] * w)
        N = float(np.sum(vp[seg] * w**2))
        S = np.maximum(np.abs(X) ** 2 - spectral.OVERSUBTRACT * N, 0)
        G = S / (S + N) if N > 0 else np.ones_like(S)
        acc[seg] += np.fft.irfft(G * X, n=frame) * w
        norm[seg] += w**2
    return acc[left:left + T] / norm[left:left + T]


@pytest.mark.parametrize("T", [1000, 1024, 77])
def test_wiener_matches_a_frame_by_frame_loop(T: int) -> None:
    rng = np.random.default_rng(T)
    x = np.cumsum(rng.normal(size=T)) * 30
    v = rng.uniform(0, 400, size=T)
    v[: T // 3] = 0.0  # noiseless stretch: frames there pass unchanged
    got = spectral.wiener(np.stack([x, -x]), np.stack([v, v]), 64)
    np.testing.assert_allclose(got[0], _wiener_loop(x, v, 64), rtol=0, atol=1e-8)
    np.testing.assert_allclose(got[1], -got[0], rtol=0, atol=1e-8)


def test_no_noise_gives_the_signal_back() -> None:
    x = np.random.default_rng(0).normal(size=(2, 3001)) * 1000
    np.testing.assert_allclose(spectral.wiener(x, np.zeros_like(x), 256), x, rtol=0, atol=1e-8)


def test_takes_white_noise_out_of_a_tone() -> None:
    rng = np.random.default_rng(1)
    t = np.arange(16000)
    clean = 3000 * np.sin(2 * np.pi * 440 * t / 8000)
    var = np.full(t.shape, 100.0**2)
    noisy = clean + rng.normal(size=t.shape) * 100
    got = spectral.wiener(noisy[None], var[None], 512)[0]
    before, after = np.mean((noisy - clean) ** 2), np.mean((got - clean) ** 2)
    assert after < before / 10  # a tone occupies a few of 257 bins: most of the noise goes (measured 22x)


def test_frame_length_is_a_power_of_two_near_64_ms() -> None:
    assert spectral.frame_length(8000) == 512
    assert spectral.frame_length(16000) == 1024
    assert spectral.frame_length(44100) == 2048  # 2822 samples: log2 11.46
    assert spectral.frame_length(48000) == 4096  # 3072 samples: log2 11.58
