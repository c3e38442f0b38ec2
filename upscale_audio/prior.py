"""The classical prior every stage starts from: a locally fitted linear interpolator and its scale.

At every network call each position n is known to lie in an interval [lo_n, hi_n) (its coarse value,
or its full value once revealed). Write x_n for the interval's centre and v_n = width_n**2 / 12 for
the variance of the (uniform) quantisation noise around it. The prior predicts each sample from its
2p neighbours, as the linear minimum-mean-square-error estimate under a covariance fitted to the
signal around it::

    R(k)   = autocorrelation of x over the window [n - A, n + A] (informative samples only), with the
             noise removed at lag 0 (the coarse samples' noise is white): fit the fine signal
    a      = (R_J + diag(v_{n+j}) + ridge)^-1 r_J      J = {-p..-1, 1..p}
    mu_n   = sum_j a_j x_{n+j}                         sigma_n^2 = R(0) - a . r_J

so revealed neighbours (v ~ 0) count fully and coarse ones are shrunk by their noise, at every step.
Window sums are exact int64 sliding sums (doubled centres are integers), so the result at n does not
depend on where a chunk starts: chunked ``enhance`` and the codec stay exact as long as the halo
covers ``A`` samples. A window without informative samples gives a broad prior.

The digit distribution of the prior is the mass of a logistic (location mu, scale from sigma) on each
digit's sub-range of the known interval, mixed with a uniform share ``UNIFORM`` so no digit is ever
impossible (``digit_log_probs``). ``lmmse`` (numba) has the numpy twin ``lmmse_np`` (tests).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:  # torch only for the model's digit distribution: the numba kernels run without it
    import torch

from .bits import _CACHE

UNIFORM = 1e-3  # share of the uniform distribution in the prior's mixture
INFORMATIVE = 4096  # samples known to within this width enter the covariance fit
BROAD = 16384.0  # sigma (16-bit units) where nothing around a sample is known
RIDGE = 1e-6  # relative ridge on the normal equations (caps the prediction gain near 60 dB)
FLOOR = 1.0 / 16.0  # error variance never below this share of the window's mean quantisation noise


@numba.njit(cache=_CACHE, nogil=True)
def _solve_spd(M: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Cholesky solve of a small symmetric positive definite system (returns zeros if it is not)."""
    n = r.shape[0]
    L = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            s = M[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                if s <= 0.0:
                    return np.zeros(n)
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    z = np.empty(n)
    for i in range(n):
        s = r[i]
        for k in range(i):
            s -= L[i, k] * z[k]
        z[i] = s / L[i, i]
    a = np.empty(n)
    for i in range(n - 1, -1, -1):
        s = z[i]
        for k in range(i + 1, n):
            s -= L[k, i] * a[k]
        a[i] = s / L[i, i]
    return a


@numba.njit(cache=_CACHE, nogil=True)
def _covariance(sums: np.ndarray, cnt: int, nvs: int, ys: int) -> np.ndarray:
    """Autocovariance of the fine signal (doubled units) from window sums of the coarse one.

    The local mean is removed and the covariance is shrunk by the share of the coarse power that is
    signal rather than quantisation noise (at most 3/4 removed): a scaled covariance stays positive
    semi-definite, so the error variance below is never negative.
    """
    mean = ys / cnt
    noise = nvs / (3.0 * cnt)
    R = np.empty(sums.shape[0])
    for k in range(sums.shape[0]):  # the biased (autocorrelation-method) estimate: PSD, well posed
        R[k] = sums[k] / cnt - mean * mean
    r0 = max(R[0], 1.0 / 3.0)
    c = max(r0 - noise, r0 / 4.0, 1.0 / 3.0) / r0  # fine power / coarse power
    for k in range(sums.shape[0]):
        R[k] = min(max(R[k] * c, -r0 * c), r0 * c)
    R[0] = r0 * c
    return R


@numba.njit(cache=_CACHE, nogil=True)
def _lmmse_row(lo: np.ndarray, hi: np.ndarray, half: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    T = lo.shape[0]
    y = np.empty(T, dtype=np.int64)  # doubled centre, signed: 2 * x - 65535
    w = np.empty(T, dtype=np.int64)  # informative?
    nv = np.empty(T, dtype=np.int64)  # 3 * (doubled noise variance) = width**2
    for i in range(T):
        width = hi[i] - lo[i]
        y[i] = lo[i] + hi[i] - 1 - 65535
        w[i] = 1 if width <= INFORMATIVE else 0
        nv[i] = width * width
    L = 2 * taps
    sums = np.zeros(L + 1, dtype=np.int64)  # sum over pairs in window of w w' y y' at lag k
    cnt = np.int64(0)
    nvs = np.int64(0)
    ys = np.int64(0)
    mu = np.empty(T)
    sig = np.empty(T)
    wlo, whi = 0, -1  # current window [wlo, whi]
    offs = np.empty(L, dtype=np.int64)
    for j in range(taps):
        offs[j] = -taps + j
        offs[taps + j] = j + 1
    M = np.empty((L, L))
    r = np.empty(L)
    for n in range(T):
        nlo, nhi = max(0, n - half), min(T - 1, n + half)
        while whi < nhi:  # grow right: pairs (m, whi + 1)
            whi += 1
            if w[whi]:
                cnt += 1
                nvs += nv[whi]
                ys += y[whi]
                for k in range(L + 1):
                    m = whi - k
                    if m >= wlo and w[m]:
                        sums[k] += y[m] * y[whi]
        while wlo < nlo:  # shrink left: pairs (wlo, wlo + k)
            if w[wlo]:
                cnt -= 1
                nvs -= nv[wlo]
                ys -= y[wlo]
                for k in range(L + 1):
                    m = wlo + k
                    if m <= whi and w[m]:
                        sums[k] -= y[wlo] * y[m]
            wlo += 1
        if cnt < 2 * L:
            mu[n] = 32767.5
            sig[n] = BROAD
            continue
        R = _covariance(sums, cnt, nvs, ys)
        mean = ys / cnt
        floor = max(nvs / (3.0 * cnt) * FLOOR, 1.0 / 3.0)
        for i in range(L):
            for j in range(L):
                M[i, j] = R[abs(offs[i] - offs[j])]
            q = n + offs[i]
            M[i, i] += RIDGE * R[0] + 1.0 / 3.0 + (nv[q] / 3.0 if 0 <= q < T else 1e18)
            r[i] = R[abs(offs[i])]
        a = _solve_spd(M, r)
        pred = 0.0
        err = R[0]
        for i in range(L):
            q = n + offs[i]
            if 0 <= q < T:
                pred += a[i] * (y[q] - mean)
            err -= a[i] * r[i]
        mu[n] = (mean + pred + 65535.0) / 2.0
        sig[n] = math.sqrt(max(err, floor)) / 2.0
    return mu, sig


@numba.njit(cache=_CACHE, nogil=True)
def _lmmse_nb(lo: np.ndarray, hi: np.ndarray, half: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    B, T = lo.shape
    mu = np.empty((B, T))
    sig = np.empty((B, T))
    for b in range(B):
        m, s = _lmmse_row(lo[b], hi[b], half, taps)
        mu[b] = m
        sig[b] = s
    return mu, sig


def lmmse(lo: np.ndarray, hi: np.ndarray, half: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """Prior location and scale (16-bit units) of every sample from the known intervals.

    lo, hi: int [B, T] (hi exclusive); half: window half-width A; taps: p per side.
    Returns (mu, sigma) float64 [B, T] each.
    """
    lo64 = np.ascontiguousarray(lo, dtype=np.int64)
    hi64 = np.ascontiguousarray(hi, dtype=np.int64)
    return _lmmse_nb(lo64, hi64, int(half), int(taps))


def lmmse_np(lo: np.ndarray, hi: np.ndarray, half: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy twin of :func:`lmmse`: direct window sums and ``np.linalg.solve`` per position."""
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    B, T = lo.shape
    L = 2 * taps
    offs = np.r_[np.arange(-taps, 0), np.arange(1, taps + 1)]
    mu = np.empty((B, T))
    sig = np.empty((B, T))
    for b in range(B):
        width = hi[b] - lo[b]
        y = (lo[b] + hi[b] - 1 - 65535).astype(np.float64)
        w = width <= INFORMATIVE
        nv = (width * width).astype(np.float64)
        for n in range(T):
            a0, a1 = max(0, n - half), min(T - 1, n + half)
            ys, ws = y[a0 : a1 + 1], w[a0 : a1 + 1]
            cnt = int(ws.sum())
            if cnt < 2 * L:
                mu[b, n], sig[b, n] = 32767.5, BROAD
                continue
            yw = ys * ws
            sums = np.array([(yw[: len(yw) - k] * yw[k:]).sum() for k in range(L + 1)])
            mean = yw.sum() / cnt
            noise = nv[a0 : a1 + 1][ws].sum() / (3.0 * cnt)
            R = sums / cnt - mean * mean
            r0 = max(R[0], 1.0 / 3.0)
            c = max(r0 - noise, r0 / 4.0, 1.0 / 3.0) / r0
            R = np.clip(R * c, -r0 * c, r0 * c)
            R[0] = r0 * c
            q = n + offs
            inside = (q >= 0) & (q < T)
            M = R[np.abs(offs[:, None] - offs[None, :])]
            neighbour_noise = np.where(inside, nv[np.clip(q, 0, T - 1)] / 3.0, 1e18)
            M[np.diag_indices(L)] += RIDGE * R[0] + 1.0 / 3.0 + neighbour_noise
            r = R[np.abs(offs)]
            try:
                np.linalg.cholesky(M)
                a = np.linalg.solve(M, r)
            except np.linalg.LinAlgError:
                a = np.zeros(L)
            pred = float((a * np.where(inside, y[np.clip(q, 0, T - 1)] - mean, 0.0)).sum())
            mu[b, n] = (mean + pred + 65535.0) / 2.0
            sig[b, n] = math.sqrt(max(R[0] - float(a @ r), noise * FLOOR, 1.0 / 3.0)) / 2.0
    return mu, sig


# ------------------------------------------------------------------------------ digit distribution
def digit_log_probs(
    mu: torch.Tensor, sigma: torch.Tensor, past: torch.Tensor, iv_lo: torch.Tensor, iv_hi: torch.Tensor,
    low: torch.Tensor, n_digits: int,
) -> torch.Tensor:
    """Log-probabilities of each digit of a stage under the prior, over the digits the interval allows.

    Digit d stands for the values [past + d * 2**low, past + (d + 1) * 2**low) intersected with the
    known interval [iv_lo, iv_hi); its prior mass is the logistic mass of that range (value v covers
    [v - 0.5, v + 0.5)), renormalised, mixed with the uniform distribution over the allowed values
    (share ``UNIFORM``). The logistic part is plain float32 CDF differences: where they lose
    precision (below ~1e-7) the uniform share dominates anyway.

    Args: mu, sigma float [B, T]; past, iv_lo, iv_hi long [B, T]; low long [B, 1]; n_digits W.
    Returns: float32 [B, T, W], -inf on digits the interval excludes; finite gradients. Each is
    log(p / share), share the part of the digit the interval allows: the model's distribution
    (``ardm.masked_log_probs`` with ``StageMaps.edge_shares``) multiplies the share back in.
    """
    import torch

    # float32 throughout: every value (0..65536) is exact in float32, and the tensors are [B, T, W]
    step = torch.pow(2.0, low.float())[..., None]  # [B, 1, 1]
    d = torch.arange(n_digits + 1, device=mu.device, dtype=torch.float32)
    lo_f, hi_f = iv_lo.float()[..., None], iv_hi.float()[..., None]
    edges = (past.float()[..., None] + d * step).clamp_(min=lo_f).clamp_(max=hi_f)  # [B, T, W + 1]
    size = edges[..., 1:] - edges[..., :-1]  # values of each digit inside the interval
    inv_s = ((math.pi / math.sqrt(3.0)) / sigma.float().clamp(min=1e-3))[..., None]
    cdf = torch.sigmoid((edges - 0.5 - mu.float()[..., None]) * inv_s)
    mass = cdf[..., 1:] - cdf[..., :-1]
    z = cdf[..., -1:] - cdf[..., :1]  # logistic mass of the whole allowed range
    uniform = size / (hi_f.clamp(max=edges[..., -1:]) - lo_f.clamp(min=edges[..., :1]))
    logistic = torch.where(z > 1e-6, mass / z.clamp(min=1e-6), uniform)
    p = (1.0 - UNIFORM) * logistic.clamp(min=0.0) + UNIFORM * uniform
    # per whole digit: ``ardm.masked_log_probs`` weighs each edge digit by the share of it the interval
    # allows, which gives back p
    share = (size / step).clamp(min=1e-30)
    return torch.where(size > 0, torch.log(p.clamp(min=1e-30)) - torch.log(share), float("-inf"))
