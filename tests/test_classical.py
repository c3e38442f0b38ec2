"""The classical estimate inside known intervals (classical.py): kernel against its twins, exactness of
the threaded pieces, the invariant, and that it restores what a wrong formula would not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from upscale_audio import classical, intervals, metrics, prior


def _cases(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    mu = rng.normal(0, 50, n)
    sigma = np.exp(rng.uniform(-3, 5, n))
    lo = rng.normal(0, 60, n)
    hi = lo + np.exp(rng.uniform(-2, 6, n))
    return mu, sigma, lo, hi


def _quadrature_mean(mu: float, sigma: float, lo: float, hi: float) -> float:
    """The mean of the density (1 + ((x - mu) / sigma)**2)**-2 on [lo, hi] by adaptive quadrature
    (its two integrals directly: no CDF differences to lose precision in the tails)."""
    def w(x: float) -> float:
        return (1.0 + ((x - mu) / sigma) ** 2) ** -2

    mass = quad(w, lo, hi, epsabs=0, epsrel=1e-12)[0]
    return quad(lambda x: x * w(x), lo, hi, epsabs=0, epsrel=1e-12)[0] / mass


def test_truncated_mean_matches_quadrature_and_numpy_twin() -> None:
    rng = np.random.default_rng(0)
    mu, sigma, lo, hi = _cases(rng, 4000)
    got = classical.truncated_mean(mu, sigma, lo, hi)
    np.testing.assert_allclose(got, classical.truncated_mean_np(mu, sigma, lo, hi), rtol=0, atol=1e-9)
    assert np.all((got >= lo) & (got <= hi))
    for i in range(0, 4000, 40):
        ref = _quadrature_mean(mu[i], sigma[i], lo[i], hi[i])
        assert abs(got[i] - ref) <= 1e-7 * (hi[i] - lo[i]) + 1e-9, (i, got[i], ref)


def test_truncated_mean_far_tails_and_degenerate_cases() -> None:
    # intervals 10 to 5000 sigma out in either tail: the closed form, the tail's series (from 30
    # sigma) and quadrature agree; no NaN
    lo = np.array([10.0, -15.0, 29.0, 30.0, 537.0, 999.0, 4000.0, -5000.0])
    hi = np.array([15.0, -10.0, 29.5, 31.0, 539.0, 1003.0, 9000.0, -4000.0])
    got = classical.truncated_mean(np.zeros(8), np.ones(8), lo, hi)
    np.testing.assert_allclose(got, [_quadrature_mean(0.0, 1.0, a, b) for a, b in zip(lo, hi)], rtol=1e-9)
    np.testing.assert_allclose(classical.truncated_mean_np(np.zeros(8), np.ones(8), lo, hi), got, rtol=1e-12)
    # no spread: mu clipped into the interval; an interval symmetric around mu: mu itself
    np.testing.assert_array_equal(classical.truncated_mean(np.array([5.0, -5.0, 1.0]), np.zeros(3),
                                                           np.array([0.0, 0.0, 0.0]), np.array([2.0, 2.0, 2.0])),
                                  [2.0, 0.0, 1.0])
    assert classical.truncated_mean(np.array([3.0]), np.array([7.0]), np.array([1.0]), np.array([5.0]))[0] == \
        pytest.approx(3.0, abs=1e-12)


def _ar2(T: int, seed: int, scale: float = 3000.0) -> np.ndarray:
    """A resonant AR(2) process (offset binary, int64 [1, T]): strongly predictable from neighbours."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=T)
    x = np.zeros(T)
    for n in range(2, T):
        x[n] = 1.8 * x[n - 1] - 0.9 * x[n - 2] + e[n]
    return np.clip(np.round(x / x.std() * scale) + 32768, 0, 65535).astype(np.int64)[None]


def test_pieces_on_threads_and_blocks_equal_one_call() -> None:
    u = _ar2(6000, 1)
    lo, hi = (v.astype(np.int64) for v in intervals.g711(intervals.g711_encode(u, "alaw"), "alaw"))
    one = prior.lmmse(lo, hi, 200, 6)
    for threads in (2, 3):
        pieces = classical._lmmse_threads(lo, hi, 200, 6, threads)
        np.testing.assert_array_equal(pieces[0], one[0])
        np.testing.assert_array_equal(pieces[1], one[1])
    whole = classical.interval_mean(lo, hi, 8000)
    for block in (640, 2944):  # blocks shorter than the windows' context, and uneven ones (multiples of the hop, 128)
        np.testing.assert_array_equal(classical.interval_mean(lo, hi, 8000, block=block), whole)
    with pytest.raises(ValueError, match="hop"):
        classical.interval_mean(lo, hi, 8000, block=700)


def _voiced(T: int, seed: int) -> np.ndarray:
    """A voiced-speech-like signal at 8 kHz: 19 harmonics of a 150 Hz pitch with vibrato, a slow
    amplitude envelope and a little white noise. int64 [1, T] offset binary."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 8000
    phase = 2 * np.pi * np.cumsum(150 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))) / 8000
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 20))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t) ** 2) + 0.01 * rng.normal(size=T)
    return np.clip(np.round(x / x.std() * 4000) + 32768, 0, 65535).astype(np.int64)[None]


def _bins_and_reference(u: np.ndarray, law: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if law == "lin6":
        lo, hi = intervals.linear(u, 6)
        return lo, hi, intervals.centre(lo, hi)
    codes = intervals.g711_encode(u, law)
    lo, hi = intervals.g711(codes, law)
    return lo, hi, intervals.decoded(law)[codes]


@pytest.mark.parametrize("law", ["ulaw", "alaw", "lin6"])
def test_interval_mean_keeps_every_bin_and_beats_the_decoded_value(law: str) -> None:
    u = _voiced(8000, 2)
    lo, hi, ref = _bins_and_reference(u, law)
    est = classical.interval_mean(lo, hi, 8000)
    assert est.dtype == np.int64 and est.shape == u.shape
    assert intervals.check_inside(est, lo, hi)
    x = u - 32768.0
    gain = metrics.snr_db(x, est - 32768.0) - metrics.snr_db(x, ref - 32768.0)
    # harmonics leave most of the spectrum to the noise (measured 1.34 mu-law, 1.28 A-law, 3.3 dB 6-bit)
    assert gain > (2.5 if law == "lin6" else 1.0), gain


@pytest.mark.parametrize("law", ["ulaw", "alaw", "lin6"])
def test_each_half_of_the_mix_pulls_its_weight(law: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local interpolator alone on a resonant AR(2) (its own model) and on the harmonics, and the
    mix with the Wiener filter on the harmonics, where it must add to the interpolator."""
    x, mixed = {}, classical.SPECTRAL_SHARE
    for name, u in (("ar2", _ar2(8000, 2)), ("voiced", _voiced(8000, 2))):
        lo, hi, ref = _bins_and_reference(u, law)
        for share in (0.0, mixed):
            monkeypatch.setattr(classical, "SPECTRAL_SHARE", share)
            est = classical.interval_mean(lo, hi, 8000)
            x[name, share] = metrics.snr_db(u - 32768.0, est - 32768.0) - metrics.snr_db(u - 32768.0, ref - 32768.0)
    # measured: AR(2) 0.46 / 0.39 / 2.3 dB (mu-law / A-law / 6-bit); harmonics 0.77 / 0.80 / 1.17 alone, +0.5..2.2 mixed
    assert x["ar2", 0.0] > (1.5 if law == "lin6" else 0.2), x
    assert x["voiced", 0.0] > (0.8 if law == "lin6" else 0.5), x
    assert x["voiced", mixed] > x["voiced", 0.0] + 0.3, x


def test_known_samples_stay() -> None:
    u = _ar2(3000, 3)
    lo, hi = intervals.linear(u, 8)
    lo[:, ::7], hi[:, ::7] = u[:, ::7], u[:, ::7] + 1  # some samples fully known
    est = classical.interval_mean(lo, hi, 16000)
    np.testing.assert_array_equal(est[:, ::7], u[:, ::7])
    assert intervals.check_inside(est, lo, hi)


def test_the_classical_estimate_replaces_the_network_only_for_a_bundled_g711_mean() -> None:
    assert classical.replaces_network("ulaw", "mean", bundled=True)
    assert classical.replaces_network("alaw", "mean", bundled=True)
    assert not classical.replaces_network(None, "mean", bundled=True)  # linear PCM: the network
    assert not classical.replaces_network("ulaw", "sample", bundled=True)  # a draw stays a draw
    assert not classical.replaces_network("ulaw", "mean", bundled=False)  # a user's model: its own mean


def test_method_lmmse_restores_linear_pcm_through_the_api() -> None:
    from upscale_audio import api

    u = _ar2(4000, 4)
    x = ((u >> 10 << 10) - 32768).astype(np.int16)  # 6-bit PCM
    got = api.restore(x, bits=6, rate=8000, method="lmmse")
    np.testing.assert_array_equal(got, classical.interval_mean(*intervals.linear(u, 6), 8000) - 32768)
    with pytest.raises(ValueError, match="unknown method"):
        api.restore(x, bits=6, method="lmse")
