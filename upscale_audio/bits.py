"""Schedules (stage widths) and keyed random numbers.

Convention (docs/DESIGN.md §1): a sample s in [-32768, 32767] is held as u = s + 32768 in [0, 65535]. A
*schedule* lists stage widths in bits, most significant first, summing to 16. Stage k predicts the
digit ``(u >> low_k) & (2**w_k - 1)`` where ``low_k`` is the number of bits below stage k::

    u = 1011 0110 0101 1100      schedule [8, 2, 2, 2, 2]
        |-stage 0-| s1 s2 s3 s4  low = [8, 6, 4, 2, 0]

The per-position geometry (x_past, x_future, digits, allowed digits of a known interval) has one
owner, ``ardm.StageMaps``; this module holds the schedule arithmetic it is built from, the keyed
uniforms of orders and draws, and ``_jit``: numba compiled on a kernel's first call (never at
import; cached where the package folder or ``NUMBA_CACHE_DIR`` is writable).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Cache compiled kernels next to the package when we may write there (or NUMBA_CACHE_DIR is set);
# otherwise compile in memory silently. numba raises at first call when it cannot cache.
_CACHE = bool(os.environ.get("NUMBA_CACHE_DIR")) or os.access(os.path.dirname(__file__), os.W_OK)


def _jit(fn: Callable[..., Any]) -> Any:
    """``numba.njit`` on the first call, so that importing this module does not import numba."""
    compiled = None

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        nonlocal compiled
        if compiled is None:
            import numba

            compiled = numba.njit(cache=_CACHE, nogil=True)(fn)
        return compiled(*args)

    return call


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


# ------------------------------------------------------------------ bit depth
def keep_top_bits(u: np.ndarray, bits: int) -> np.ndarray:
    """Zero all but the top ``bits`` bits of u (int [...] -> int64 [...])."""
    shift = 16 - int(bits)
    return (np.asarray(u, dtype=np.int64) >> shift) << shift


# ------------------------------------------------------------------ keyed random numbers
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def keyed_uniform(key: int, index: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) draws that depend only on (key, index): splitmix64 of key * golden + index.

    Sampling keys its draws by absolute sample index so results do not depend on chunking.
    index: int [...] -> float64 [...]. numpy, not numba: a numba twin was 2x faster (1.4 -> 0.8 ms
    per million keys) but importing numba costs half a second of every command's start-up.
    """
    with np.errstate(over="ignore"):
        z = np.uint64(key & 0xFFFFFFFFFFFFFFFF) * _GOLD + np.asarray(index, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def mix_key(*parts: int) -> int:
    """Combine several integers (seed, file, channel, stage, ...) into one 64-bit key."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h
