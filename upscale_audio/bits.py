"""Bit and stage arithmetic on offset-binary samples, as numba kernels with numpy twins.

Convention (docs/DESIGN.md §1): a sample s in [-32768, 32767] is held as u = s + 32768 in [0, 65535]. A
*schedule* lists stage widths in bits, most significant first, summing to 16. Stage k predicts the
digit ``(u >> low_k) & (2**w_k - 1)`` where ``low_k`` is the number of bits below stage k::

    u = 1011 0110 0101 1100      schedule [8, 2, 2, 2, 2]
        |-stage 0-| s1 s2 s3 s4  low = [8, 6, 4, 2, 0]

Before stage k the value is x_past (digits of stages >= k zero); after it x_future.

Every public function takes and returns numpy arrays; ``*_np`` are the numpy twins with the same
signature, used as references in the tests. numba compiles lazily on the first call (never at
import) and caches where the package folder or ``NUMBA_CACHE_DIR`` is writable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np

# Cache compiled kernels next to the package when we may write there (or NUMBA_CACHE_DIR is set);
# otherwise compile in memory silently. numba raises at first call when it cannot cache.
_CACHE = bool(os.environ.get("NUMBA_CACHE_DIR")) or os.access(os.path.dirname(__file__), os.W_OK)


def _jit(fn: Callable[..., Any]) -> Any:
    return numba.njit(cache=_CACHE, nogil=True)(fn)


def check_schedule(schedule: Sequence[int]) -> np.ndarray:
    """Return the schedule as int64 widths, or raise ValueError if it does not sum to 16."""
    w = np.asarray(list(schedule), dtype=np.int64)
    if w.ndim != 1 or len(w) == 0 or np.any(w < 1) or int(w.sum()) != 16:
        raise ValueError(f"schedule {list(schedule)} must be positive widths summing to 16")
    return w


def stage_lows(schedule: Sequence[int]) -> np.ndarray:
    """Number of bits below each stage: [16 - w0, 16 - w0 - w1, ..., 0]."""
    w = check_schedule(schedule)
    return 16 - np.cumsum(w)


def stage_of_bit(schedule: Sequence[int], known_bits: int) -> int:
    """Index of the first stage that is not fully known when the top ``known_bits`` bits are known."""
    w = check_schedule(schedule)
    ends = np.cumsum(w)  # bits known after each stage
    return int(np.searchsorted(ends, known_bits, side="right"))


# ------------------------------------------------------------------ split / merge digits
@_jit
def _split_nb(u: np.ndarray, widths: np.ndarray) -> np.ndarray:
    S = widths.shape[0]
    out = np.empty((S, u.shape[0]), dtype=np.int32)
    for i in range(u.shape[0]):
        v = np.int64(u[i])
        low = 16
        for k in range(S):
            low -= widths[k]
            out[k, i] = (v >> low) & ((1 << widths[k]) - 1)
    return out


def split_digits_np(u: np.ndarray, schedule: Sequence[int]) -> np.ndarray:
    """Digits of every stage. u: int [N] in [0, 65535] -> int32 [S, N]."""
    w = check_schedule(schedule)
    lows = 16 - np.cumsum(w)
    u64 = np.asarray(u, dtype=np.int64)
    return np.stack([(u64 >> lo) & ((1 << wk) - 1) for lo, wk in zip(lows, w)]).astype(np.int32)


def split_digits(u: np.ndarray, schedule: Sequence[int]) -> np.ndarray:
    """Digits of every stage. u: int [N] in [0, 65535] -> int32 [S, N]."""
    return _split_nb(np.ascontiguousarray(u, dtype=np.int64), check_schedule(schedule))


@_jit
def _merge_nb(digits: np.ndarray, widths: np.ndarray) -> np.ndarray:
    S, N = digits.shape
    out = np.empty(N, dtype=np.int64)
    for i in range(N):
        v = np.int64(0)
        for k in range(S):
            v = (v << widths[k]) | np.int64(digits[k, i])
        out[i] = v
    return out


def merge_digits_np(digits: np.ndarray, schedule: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`split_digits`: int [S, N] -> int64 u [N]."""
    w = check_schedule(schedule)
    v = np.zeros(np.asarray(digits).shape[1], dtype=np.int64)
    for k, wk in enumerate(w):
        v = (v << wk) | np.asarray(digits[k], dtype=np.int64)
    return v


def merge_digits(digits: np.ndarray, schedule: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`split_digits`: int [S, N] -> int64 u [N]."""
    return _merge_nb(np.ascontiguousarray(digits, dtype=np.int64), check_schedule(schedule))


# ------------------------------------------------------------------ per-stage values
@_jit
def _stage_values_nb(u: np.ndarray, low: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    N = u.shape[0]
    past = np.empty(N, dtype=np.int64)
    future = np.empty(N, dtype=np.int64)
    target = np.empty(N, dtype=np.int64)
    hi = low + width
    for i in range(N):
        v = np.int64(u[i])
        past[i] = (v >> hi) << hi
        future[i] = (v >> low) << low
        target[i] = (v >> low) & ((1 << width) - 1)
    return past, future, target


def stage_values_np(u: np.ndarray, schedule: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_past, x_future, target digit) of stage k. u: int [N] -> three int64 [N]."""
    low = int(stage_lows(schedule)[k])
    w = int(check_schedule(schedule)[k])
    u64 = np.asarray(u, dtype=np.int64)
    return (u64 >> (low + w)) << (low + w), (u64 >> low) << low, (u64 >> low) & ((1 << w) - 1)


def stage_values(u: np.ndarray, schedule: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_past, x_future, target digit) of stage k. u: int [N] -> three int64 [N]."""
    low = int(stage_lows(schedule)[k])
    w = int(check_schedule(schedule)[k])
    return _stage_values_nb(np.ascontiguousarray(u, dtype=np.int64), low, w)


# ------------------------------------------------------------------ known bits inside a stage
def allowed_digit_range_np(
    u_known: np.ndarray, schedule: Sequence[int], k: int, known_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Digits of stage k consistent with the top ``known_bits`` bits of ``u_known``: [lo, hi) per sample.

    The allowed digits of a partially known stage are always a contiguous range: the digit's own
    top bits are fixed and its low ``free`` bits are free. Fully unknown stage: [0, 2**w);
    fully known stage: one digit. u_known: int [N] -> (lo, hi) int64 [N].
    """
    low = int(stage_lows(schedule)[k])
    w = int(check_schedule(schedule)[k])
    fixed = int(np.clip(known_bits - (16 - low - w), 0, w))  # digit bits already known
    free = w - fixed
    u64 = np.asarray(u_known, dtype=np.int64)
    prefix = ((u64 >> low) & ((1 << w) - 1)) >> free
    return prefix << free, (prefix + 1) << free


@_jit
def _allowed_nb(u: np.ndarray, low: int, w: int, free: int) -> tuple[np.ndarray, np.ndarray]:
    N = u.shape[0]
    lo = np.empty(N, dtype=np.int64)
    hi = np.empty(N, dtype=np.int64)
    for i in range(N):
        prefix = ((np.int64(u[i]) >> low) & ((1 << w) - 1)) >> free
        lo[i] = prefix << free
        hi[i] = (prefix + 1) << free
    return lo, hi


def allowed_digit_range(
    u_known: np.ndarray, schedule: Sequence[int], k: int, known_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """numba version of :func:`allowed_digit_range_np` (same contract)."""
    low = int(stage_lows(schedule)[k])
    w = int(check_schedule(schedule)[k])
    fixed = int(np.clip(known_bits - (16 - low - w), 0, w))
    return _allowed_nb(np.ascontiguousarray(u_known, dtype=np.int64), low, w, w - fixed)


def allowed_digit_mask(lo: np.ndarray, hi: np.ndarray, width: int) -> np.ndarray:
    """Boolean mask [N, 2**width] of allowed digits from per-sample ranges [lo, hi)."""
    d = np.arange(1 << width)[None, :]
    return (d >= np.asarray(lo)[:, None]) & (d < np.asarray(hi)[:, None])


# ------------------------------------------------------------------ bit-depth detection
@_jit
def _or_all_nb(u: np.ndarray) -> int:
    acc = np.int64(0)
    for i in range(u.shape[0]):
        acc |= np.int64(u[i])
    return acc


def _bits_from_or(acc: int) -> int:
    if acc == 0:
        return 1  # cannot happen for u (silence is u = 32768); kept total
    tz = (acc & -acc).bit_length() - 1
    return 16 - min(tz, 15)


def significant_bits_np(u: np.ndarray) -> int:
    """Number of high bits in use: 16 minus the trailing zero bits that all samples share.

    Computed on u, where silence (u = 32768) has one significant bit. u: int [N] -> int in 1..16.
    """
    acc = int(np.bitwise_or.reduce(np.asarray(u, dtype=np.int64).ravel())) if np.size(u) else 0
    return _bits_from_or(acc)


def significant_bits(u: np.ndarray) -> int:
    """numba version of :func:`significant_bits_np`."""
    flat = np.ascontiguousarray(np.asarray(u).ravel(), dtype=np.int64)
    return _bits_from_or(int(_or_all_nb(flat))) if flat.size else 1


def keep_top_bits(u: np.ndarray, bits: int) -> np.ndarray:
    """Zero all but the top ``bits`` bits of u (int [...] -> int64 [...])."""
    shift = 16 - int(bits)
    return (np.asarray(u, dtype=np.int64) >> shift) << shift


# ------------------------------------------------------------------ keyed random numbers
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def keyed_uniform_np(key: int, index: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) draws that depend only on (key, index): splitmix64 of key * golden + index.

    Sampling keys its draws by absolute sample index so results do not depend on chunking.
    index: int [...] -> float64 [...].
    """
    with np.errstate(over="ignore"):
        z = np.uint64(key & 0xFFFFFFFFFFFFFFFF) * _GOLD + np.asarray(index, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@_jit
def _keyed_uniform_nb(key: np.uint64, index: np.ndarray) -> np.ndarray:
    out = np.empty(index.shape[0], dtype=np.float64)
    for i in range(index.shape[0]):
        z = key * np.uint64(0x9E3779B97F4A7C15) + np.uint64(index[i])
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    return out


def keyed_uniform(key: int, index: np.ndarray) -> np.ndarray:
    """numba version of :func:`keyed_uniform_np` (1-D index)."""
    idx = np.ascontiguousarray(np.asarray(index).ravel(), dtype=np.uint64)
    return _keyed_uniform_nb(np.uint64(key & 0xFFFFFFFFFFFFFFFF), idx).reshape(np.shape(index))


def mix_key(*parts: int) -> int:
    """Combine several integers (seed, file, channel, stage, ...) into one 64-bit key."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h
