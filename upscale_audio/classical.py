"""The classical estimate inside known intervals: no network, a few numba passes.

Each sample gets the prior of ``prior.py`` (a linear interpolator from its ``TAPS`` neighbours a
side, fitted on a window of +-``WINDOW_SECONDS`` around it, the neighbours' quantisation noise taken
into account) and is estimated as the mean of that Gaussian truncated to the sample's own interval::

    x_hat_n = E[x | x ~ N(mu_n, sigma_n^2), lo_n <= x < hi_n]

rounded to the nearest value and clipped into [lo_n, hi_n - 1], so every known bit is kept.

Where it is used (docs/RESULTS.md §20, fitted on the corpus's train split, reported on held-out):

* ``enhance --method lmmse``: the model-free restore of any input.
* G.711 with ``--mode mean`` and the bundled models: the output is ``G711_NETWORK_SHARE`` of the
  network's posterior mean plus the rest of this estimate. On G.711 this estimate beats the
  bundled interval model on every set (8 kHz speech +0.24 against +0.08 dB over the decoded value,
  16 kHz speech +1.53 against +0.76, music +1.09 against +0.62, mu-law), and a fifth of the network
  on top adds a little more; for linear PCM the network is far better and runs alone.

``truncated_mean`` (numba) has the numpy twin ``truncated_mean_np`` (tests).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from . import prior
from .bits import _CACHE

WINDOW_SECONDS = 0.05  # half-width of the prior's covariance window (best of 25..100 ms on the train split)
TAPS = 16  # neighbours per side of the interpolator
G711_NETWORK_SHARE = 0.2  # the network's weight in the G.711 posterior mean (train split: 0.1..0.3 best)
_SQRT2 = math.sqrt(2.0)


@numba.njit(cache=_CACHE, nogil=True)
def _truncated_mean_nb(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    out = np.empty(mu.shape[0])
    for i in range(mu.shape[0]):
        out[i] = _truncated_one(mu[i], sigma[i], lo[i], hi[i])
    return out


@numba.njit(cache=_CACHE, nogil=True, inline="always")
def _truncated_one(mu: float, sigma: float, lo: float, hi: float) -> float:
    if not sigma > 0.0:
        return min(max(mu, lo), hi)
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    # mass and density difference from the tail nearer the interval, so neither cancels to zero
    if a > 0.0:
        mass = 0.5 * (math.erfc(a / _SQRT2) - math.erfc(b / _SQRT2))
    elif b < 0.0:
        mass = 0.5 * (math.erfc(-b / _SQRT2) - math.erfc(-a / _SQRT2))
    else:
        mass = 0.5 * (math.erf(b / _SQRT2) - math.erf(a / _SQRT2))
    dens = (math.exp(-0.5 * a * a) - math.exp(-0.5 * b * b)) / math.sqrt(2.0 * math.pi)
    if not mass > 1e-300:  # no mass left in double precision: the edge nearer the Gaussian
        return min(max(mu, lo), hi)
    return min(max(mu + sigma * dens / mass, lo), hi)


def truncated_mean(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of N(mu, sigma^2) restricted to [lo, hi] (any equal shapes; float64 out, same shape).
    Where the interval holds no mass in double precision: mu clipped into [lo, hi]."""
    args = [np.ascontiguousarray(np.broadcast_to(v, np.shape(mu)), dtype=np.float64).ravel()
            for v in (mu, sigma, lo, hi)]
    return _truncated_mean_nb(*args).reshape(np.shape(mu))


def truncated_mean_np(mu: np.ndarray, sigma: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Numpy twin of :func:`truncated_mean` (the same branches, one array operation each)."""
    mu, sigma, lo, hi = (np.asarray(v, dtype=np.float64) for v in (mu, sigma, lo, hi))
    erf, erfc = np.vectorize(math.erf), np.vectorize(math.erfc)
    ok = sigma > 0
    s = np.where(ok, sigma, 1.0)
    a, b = (lo - mu) / s, (hi - mu) / s
    mass = np.where(a > 0, 0.5 * (erfc(a / _SQRT2) - erfc(b / _SQRT2)),
                    np.where(b < 0, 0.5 * (erfc(-b / _SQRT2) - erfc(-a / _SQRT2)),
                             0.5 * (erf(b / _SQRT2) - erf(a / _SQRT2))))
    dens = (np.exp(-0.5 * a * a) - np.exp(-0.5 * b * b)) / math.sqrt(2.0 * math.pi)
    good = ok & (mass > 1e-300)
    est = np.where(good, mu + s * dens / np.where(good, mass, 1.0), mu)
    return np.clip(est, lo, hi)


def interval_mean(iv_lo: np.ndarray, iv_hi: np.ndarray, rate: int) -> np.ndarray:
    """The classical estimate of every sample inside its interval [iv_lo, iv_hi).

    iv_lo, iv_hi: int [C, T] (offset binary, hi exclusive); rate in Hz sets the window.
    Returns int64 [C, T] with iv_lo <= out < iv_hi.
    """
    lo = np.ascontiguousarray(iv_lo, dtype=np.int64)
    hi = np.ascontiguousarray(iv_hi, dtype=np.int64)
    half = max(TAPS + 1, round(WINDOW_SECONDS * rate))
    mu, sigma = _lmmse_threads(lo, hi, half, TAPS, os.cpu_count() or 1)
    # value v stands for [v - 1/2, v + 1/2): the interval of values is [lo - 1/2, hi - 1/2) on the line
    est = truncated_mean(mu, sigma, lo - 0.5, hi - 0.5)
    return np.clip(np.floor(est + 0.5).astype(np.int64), lo, hi - 1)


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


def blend(network: np.ndarray, classical: np.ndarray, share: float) -> np.ndarray:
    """``share`` of the network's estimate plus the rest of the classical one, rounded (int64 [C, T]).
    Both lie in the same intervals, so their blend does too."""
    mix = share * np.asarray(network, dtype=np.float64) + (1.0 - share) * np.asarray(classical, dtype=np.float64)
    return np.floor(mix + 0.5).astype(np.int64)


def network_share(law: str | None, mode: str, bundled: bool) -> float:
    """The network's weight in what ``enhance`` writes: ``G711_NETWORK_SHARE`` for a G.711 posterior
    mean with the bundled models, else 1 (the network alone: linear PCM, sampling, a user's model)."""
    return G711_NETWORK_SHARE if law in ("ulaw", "alaw") and mode == "mean" and bundled else 1.0
