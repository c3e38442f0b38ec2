"""The classical estimate inside known intervals: no network, a few numba and FFT passes.

Two estimates, mixed. The local one: each sample gets the prior of ``prior.py`` (a linear
interpolator from its ``TAPS`` neighbours a side, fitted on a window of +-``WINDOW_SECONDS`` around
it, the neighbours' quantisation noise taken into account: a location mu_n and a standard deviation
sigma_n) and is estimated as the mean of a heavy-tailed distribution around it restricted to the
sample's own interval::

    local_n = E[x | x ~ t_3(mu_n, sigma_n), lo_n - 1/2 <= x < hi_n - 1/2]

t_3 is the Student-t of 3 degrees of freedom scaled to standard deviation sigma_n (density
proportional to (1 + z**2)**-2, z = (x - mu_n) / sigma_n): its mean over an interval has a closed
form. Speech and music residuals are heavier-tailed than a Gaussian; on the train split (20 s a set,
mu-law) the t_3 gained +0.50 / +1.95 / +0.98 dB over G.711's decoded value (8 kHz speech / 16 kHz
speech / music) where a Gaussian gained +0.38 / +1.56 / +0.83 and a Laplacian +0.50 / +1.88 / +0.94.
The spectral one: ``spectral.wiener``, a short-time Wiener filter of the bin centres, which resolves
harmonics the 48-tap interpolator cannot. The output is

    x_hat_n = SPECTRAL_SHARE * wiener_n + (1 - SPECTRAL_SHARE) * local_n

rounded to the nearest value and clipped into [lo_n, hi_n - 1], so every known bit is kept. On the
train split the mix gained +0.35 / +0.33 / +0.52 dB over the local estimate alone (mu-law).

Where it is used (docs/RESULTS.md §20-§22: fitted on the corpus's train split, reported on held-out):

* ``enhance --method lmmse``: the model-free restore of any input.
* A G.711 posterior mean (``enhance`` of a mu-law or A-law file, ``--mode mean``) with the bundled
  models (``replaces_network``), shifted by the learned correction at 8 and 16 kHz
  (``correction.py``, ``interval_mean(..., corr=)``). On 60 s of each held-out set this estimate
  alone gains +1.10 dB over G.711's decoded value on 8 kHz speech (the local half alone +0.73; the
  bundled interval model's mean +0.16 mu-law / +0.26 A-law), +2.07 / +2.09 on 16 kHz speech and
  +1.04 / +1.09 on music; with the correction +1.61 / +1.63, +2.65 / +2.66 and +1.18 / +1.23.
* Linear PCM: the network restores alone; ``--mode sample`` and a user's ``--model`` always run it.

``truncated_mean`` (numba) has the numpy twin ``truncated_mean_np`` (tests).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from . import correction, prior, spectral
from .bits import _CACHE

# half-width of the prior's covariance window: of 35..100 ms on the train split, 50 ms was best on 16 kHz
# speech and music and within 0.04 dB of the best (35 ms) on 8 kHz speech
WINDOW_SECONDS = 0.05
TAPS = 24  # neighbours per side of the interpolator (train split: 16 -> 24 gained +0.04..+0.17 dB for 1.9x the time)
BLOCK = 1 << 20  # samples per block of interval_mean (about 100 MB of working arrays per channel)
# the short-time Wiener estimate's share of the mix (train split, 20 s a set: 0.5..0.7 within 0.02 dB, 0.7 best)
SPECTRAL_SHARE = 0.7
FAR = 30.0  # sigmas out in one tail from which the truncated mean is taken from the series


@numba.njit(cache=_CACHE, nogil=True)
def _truncated_mean_nb(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    out = np.empty(mu.shape[0])
    for i in range(mu.shape[0]):
        out[i] = _truncated_one(mu[i], sigma[i], lo[i], hi[i])
    return out


@numba.njit(cache=_CACHE, nogil=True, inline="always")
def _inv_pow_diff(a: float, b: float, k: int) -> float:
    """a**-k - b**-k for a, b of one sign, as (b - a) * sum_i a**i b**(k-1-i) / (a b)**k: no cancellation."""
    s = 0.0
    for i in range(k):
        s += a**i * b ** (k - 1 - i)
    return (b - a) * s / (a * b) ** k


@numba.njit(cache=_CACHE, nogil=True, inline="always")
def _truncated_one(mu: float, sigma: float, lo: float, hi: float) -> float:
    if not sigma > 0.0:
        return min(max(mu, lo), hi)
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    if a * b > 0.0 and min(abs(a), abs(b)) >= FAR:
        # out in one tail the closed form cancels: (1 + z^2)^-2 = z^-4 - 2 z^-6 + 3 z^-8 - 4 z^-10 + ...
        # (relative error below FAR**-8), integrated term by term
        num = (_inv_pow_diff(a, b, 2) / 2 - _inv_pow_diff(a, b, 4) / 2 + _inv_pow_diff(a, b, 6) / 2
               - _inv_pow_diff(a, b, 8) / 2)
        mass = (_inv_pow_diff(a, b, 3) / 3 - 2 * _inv_pow_diff(a, b, 5) / 5 + 3 * _inv_pow_diff(a, b, 7) / 7
                - 4 * _inv_pow_diff(a, b, 9) / 9)
    else:
        # 2 * the integrals of z (1 + z^2)^-2 and (1 + z^2)^-2 over [a, b]
        arc = math.atan((b - a) / (1.0 + a * b)) if a * b > 0.0 else math.atan(b) - math.atan(a)
        mass = arc + b / (1.0 + b * b) - a / (1.0 + a * a)
        num = 1.0 / (1.0 + a * a) - 1.0 / (1.0 + b * b)
    if not mass > 0.0:  # an empty interval
        return min(max(mu, lo), hi)
    return min(max(mu + sigma * num / mass, lo), hi)


def truncated_mean(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the Student-t of 3 degrees of freedom with location mu and standard deviation sigma
    (density proportional to (1 + ((x - mu) / sigma)**2)**-2), restricted to [lo, hi]. Any equal
    shapes; float64 out, same shape; mu clipped into [lo, hi] where sigma is 0 or the interval empty."""
    args = [np.ascontiguousarray(np.broadcast_to(v, np.shape(mu)), dtype=np.float64).ravel()
            for v in (mu, sigma, lo, hi)]
    return _truncated_mean_nb(*args).reshape(np.shape(mu))


def truncated_mean_np(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`truncated_mean` (the same branches, one array operation each)."""
    mu, sigma, lo, hi = (np.asarray(v, dtype=np.float64) for v in (mu, sigma, lo, hi))
    ok = sigma > 0
    s = np.where(ok, sigma, 1.0)
    a, b = (lo - mu) / s, (hi - mu) / s
    far = (a * b > 0) & (np.minimum(np.abs(a), np.abs(b)) >= FAR)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        def d(k: int) -> np.ndarray:  # a**-k - b**-k without cancellation (a, b of one sign)
            return (b - a) * sum(a**i * b ** (k - 1 - i) for i in range(k)) / (a * b) ** k

        num_far = d(2) / 2 - d(4) / 2 + d(6) / 2 - d(8) / 2
        mass_far = d(3) / 3 - 2 * d(5) / 5 + 3 * d(7) / 7 - 4 * d(9) / 9
        arc = np.where(a * b > 0, np.arctan((b - a) / (1.0 + a * b)), np.arctan(b) - np.arctan(a))
        mass = np.where(far, mass_far, arc + b / (1.0 + b * b) - a / (1.0 + a * a))
        num = np.where(far, num_far, 1.0 / (1.0 + a * a) - 1.0 / (1.0 + b * b))
        z = num / mass
    good = ok & (mass > 0)
    return np.clip(np.where(good, mu + s * z, mu), lo, hi)


@dataclass
class Components:
    """The parts of the classical estimate, float64 [C, T] each: the interpolator's location ``mu``
    and scale ``sigma``, its truncated t_3 mean ``local``, the Wiener estimate ``wiener``, and their
    mix ``mix`` (clipped to the intervals' edges on the line, not rounded)."""

    mu: np.ndarray
    sigma: np.ndarray
    local: np.ndarray
    wiener: np.ndarray
    mix: np.ndarray


def _half_window(rate: int) -> int:
    return max(TAPS + 1, round(WINDOW_SECONDS * rate))


def components(lo: np.ndarray, hi: np.ndarray, rate: int) -> Components:
    """The classical estimate's parts over all of lo, hi (int64 [C, T]; no blocks: ``interval_mean``
    runs this on each block with its context)."""
    mu, sigma = _lmmse_threads(lo, hi, _half_window(rate), TAPS, os.cpu_count() or 1)
    width = (hi - lo).astype(np.float64)
    wiener = spectral.wiener((lo + hi - 1) / 2.0, width**2 / 12.0, spectral.frame_length(rate))
    # value v stands for [v - 1/2, v + 1/2): the interval of values is [lo - 1/2, hi - 1/2) on the line
    local = truncated_mean(mu, sigma, lo - 0.5, hi - 0.5)
    mix = np.clip(SPECTRAL_SHARE * wiener + (1.0 - SPECTRAL_SHARE) * local, lo - 0.5, hi - 0.5)
    return Components(mu, sigma, local, wiener, mix)


def interval_mean(iv_lo: np.ndarray, iv_hi: np.ndarray, rate: int, block: int = BLOCK,
                  corr: correction.Correction | None = None) -> np.ndarray:
    """The classical estimate of every sample inside its interval [iv_lo, iv_hi).

    ``SPECTRAL_SHARE`` of the short-time Wiener estimate (``spectral.wiener``) plus the rest of the
    interpolator's truncated t_3 mean; with ``corr``, shifted by the learned correction
    (``correction.py``); rounded and clipped into the interval. iv_lo, iv_hi: int [C, T] (offset
    binary, hi exclusive); rate in Hz sets the windows. Runs in blocks of ``block`` samples (a
    multiple of the Wiener hop; the windows, taps, frames and the correction's reach as context, so
    any such block size gives the same output) to bound memory on long files. Returns int64 [C, T]
    with iv_lo <= out < iv_hi.
    """
    lo = np.ascontiguousarray(iv_lo, dtype=np.int64)
    hi = np.ascontiguousarray(iv_hi, dtype=np.int64)
    half = _half_window(rate)
    frame = spectral.frame_length(rate)
    hop = frame // 4
    if block % hop:
        raise ValueError(f"block {block} is not a multiple of the Wiener hop {hop}")
    reach = max(half + TAPS, frame) + (corr.arch.context if corr is not None else 0)
    T, ctx = lo.shape[1], -(-reach // hop) * hop  # context on the frames' grid
    out = np.empty(lo.shape, dtype=np.int64)
    for s in range(0, T, block):
        e = min(T, s + block)
        s0, e0 = max(0, s - ctx), min(T, e + ctx)
        seg_lo, seg_hi = lo[:, s0:e0], hi[:, s0:e0]
        c = components(seg_lo, seg_hi, rate)
        est = c.mix if corr is None else correction.apply(corr, seg_lo, seg_hi, c.local, c.wiener, c.mu, c.sigma, c.mix)
        out[:, s:e] = np.clip(np.floor(est[:, s - s0:e - s0] + 0.5).astype(np.int64), lo[:, s:e], hi[:, s:e] - 1)
    return out


def _lmmse_threads(lo: np.ndarray, hi: np.ndarray, half: int, taps: int, threads: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``prior.lmmse`` on [C, T] in pieces of time run on ``threads`` threads (its kernel releases
    the GIL). A sample's result reads only the window +-half and the taps around it, so pieces that
    carry ``half + taps`` samples of context either side give the same numbers as one call."""
    T = lo.shape[1]
    pieces = max(1, min(threads, T // (4 * (half + taps) + 1)))
    if pieces == 1:
        return prior.lmmse(lo, hi, half, taps)
    edges = np.linspace(0, T, pieces + 1).astype(int)
    ctx = half + taps
    mu, sigma = np.empty(lo.shape), np.empty(lo.shape)

    def one(k: int) -> None:
        a, b = int(edges[k]), int(edges[k + 1])
        a0, b0 = max(0, a - ctx), min(T, b + ctx)
        m, s = prior.lmmse(lo[:, a0:b0], hi[:, a0:b0], half, taps)
        mu[:, a:b], sigma[:, a:b] = m[:, a - a0:b - a0], s[:, a - a0:b - a0]

    with ThreadPoolExecutor(pieces) as pool:
        list(pool.map(one, range(pieces)))
    return mu, sigma


def replaces_network(law: str | None, mode: str, bundled: bool) -> bool:
    """Whether ``enhance`` writes this estimate in place of the network's: a G.711 (``law`` "ulaw" or
    "alaw") posterior mean with the bundled models. Linear PCM, sampling and a user's model run the
    network."""
    return law in ("ulaw", "alaw") and mode == "mean" and bundled
