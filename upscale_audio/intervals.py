"""Known intervals: what an input already tells about each 16-bit sample.

Every sample u (offset binary, 0..65535) of a restoration is known to lie in an interval
``[lo, hi)``; the output must stay inside it. Two kinds of input give intervals:

* linear PCM with N known bits (8-bit WAV, or a 16-bit file whose low bits are all zero): the aligned
  bin ``[u >> (16-N) << (16-N), ... + 2**(16-N))``, the special case the stage geometry was built on;
* G.711 mu-law / A-law (telephony, ``.au``, many WAV archives): the companded bins of ITU-T G.711,
  a few units wide near zero and about a thousand 16-bit units at full scale.

G.711 bins: encoders round differently (libsndfile truncates to 14/13 bits, sox rounds), so a code's
bin is the set of 16-bit values that *both* encoders map to that code (libsndfile's bin where they
share no value). Any output inside it re-encodes to the input's byte with either encoder. For scoring
(``bpd --given ulaw``) the code of a 16-bit original is libsndfile's, whose bins partition 0..65535.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import soundfile as sf

LAWS = ("ulaw", "alaw")
_SF_SUBTYPE = {"ulaw": "ULAW", "alaw": "ALAW"}


def linear(u: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Aligned interval of the top ``bits`` bits of u. int [...] -> (lo, hi) int64 [...]."""
    shift = 16 - int(bits)
    lo = (np.asarray(u, dtype=np.int64) >> shift) << shift
    return lo, lo + (1 << shift)


def full(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Nothing known: [0, 65536) everywhere."""
    return np.zeros(shape, dtype=np.int64), np.full(shape, 1 << 16, dtype=np.int64)


# ------------------------------------------------------------------------------ G.711
@cache
def libsndfile_codes(law: str) -> np.ndarray:
    """libsndfile's G.711 code of every 16-bit value: uint8 [65536], indexed by u = s + 32768."""
    s = np.arange(-32768, 32768, dtype=np.int16)
    buf = io.BytesIO()
    sf.write(buf, s, 8000, subtype=_SF_SUBTYPE[law], format="RAW")
    return np.frombuffer(buf.getvalue(), dtype=np.uint8).copy()


@cache
def decoded(law: str) -> np.ndarray:
    """libsndfile's decoded 16-bit value of each code, as u: int64 [256]."""
    codes = np.arange(256, dtype=np.uint8).tobytes()
    s = sf.read(io.BytesIO(codes), samplerate=8000, channels=1, subtype=_SF_SUBTYPE[law], format="RAW",
                dtype="int16")[0]
    return s.astype(np.int64) + 32768


def _sox_ulaw(s: np.ndarray) -> np.ndarray:
    """sox's mu-law encoder (Sun g711.c ``14linear2ulaw`` of the value rounded to 14 bits)."""
    x = np.clip((s.astype(np.int64) + 2) >> 2, -8192, 8191)
    mask = np.where(x < 0, 0x7F, 0xFF)
    m = np.minimum(np.abs(x), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), m)
    uval = (seg << 4) | ((m >> (seg + 1)) & 0xF)
    return (np.where(seg >= 8, 0x7F, uval) ^ mask).astype(np.uint8)


def _sox_alaw(s: np.ndarray) -> np.ndarray:
    """sox's A-law encoder (Sun g711.c ``13linear2alaw`` of the value rounded to 13 bits)."""
    x = np.clip((s.astype(np.int64) + 4) >> 3, -4096, 4095)
    mask = np.where(x >= 0, 0xD5, 0x55)
    m = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), m)
    aval = (seg << 4) | (np.where(seg < 2, m >> 1, m >> np.maximum(seg, 1)) & 0xF)
    return (np.where(seg >= 8, 0x7F, aval) ^ mask).astype(np.uint8)


def sox_codes(law: str) -> np.ndarray:
    """sox's G.711 code of every 16-bit value (``sox -D``, no dither): uint8 [65536]."""
    s = np.arange(-32768, 32768, dtype=np.int64)
    return _sox_ulaw(s) if law == "ulaw" else _sox_alaw(s)


def _bins(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-code [lo, hi) over u of an encoder's code table (empty bins: lo = hi = 0)."""
    u = np.arange(65536, dtype=np.int64)
    lo = np.full(256, 1 << 16, dtype=np.int64)
    hi = np.zeros(256, dtype=np.int64)
    np.minimum.at(lo, codes, u)
    np.maximum.at(hi, codes, u + 1)
    lo[hi == 0] = 0
    return lo, hi


@cache
def g711_bins(law: str) -> tuple[np.ndarray, np.ndarray]:
    """The restore interval of every code: [lo, hi) int64 [256] each (see the module docstring)."""
    if law not in LAWS:
        raise ValueError(f"unknown G.711 law {law!r}; choose ulaw or alaw")
    lo_l, hi_l = _bins(libsndfile_codes(law))
    lo_s, hi_s = _bins(sox_codes(law))
    lo, hi = np.maximum(lo_l, lo_s), np.minimum(hi_l, hi_s)
    empty = hi <= lo
    return np.where(empty, lo_l, lo), np.where(empty, hi_l, hi)


def g711_encode(u: np.ndarray, law: str) -> np.ndarray:
    """libsndfile's G.711 code of 16-bit samples. u int [...] -> uint8 [...]."""
    return libsndfile_codes(law)[np.asarray(u, dtype=np.int64)]


def g711(codes: np.ndarray, law: str) -> tuple[np.ndarray, np.ndarray]:
    """Restore intervals of G.711 codes. uint8 [...] -> (lo, hi) int64 [...]."""
    lo, hi = g711_bins(law)
    c = np.asarray(codes, dtype=np.int64)
    return lo[c], hi[c]


def g711_of_u(u: np.ndarray, law: str) -> tuple[np.ndarray, np.ndarray]:
    """Scoring intervals: the libsndfile bin of each 16-bit value (a partition). -> (lo, hi) int64."""
    lo, hi = _bins(libsndfile_codes(law))
    c = g711_encode(u, law).astype(np.int64)
    return lo[c], hi[c]


def decoded_to_codes(u_decoded: np.ndarray, law: str) -> np.ndarray:
    """The codes behind decoded G.711 values (as soundfile returns them). Raises ValueError if a
    value is not one of the law's 256 decoded values. int [...] -> uint8 [...]."""
    table = decoded(law)
    order = np.argsort(table, kind="stable")
    v = np.asarray(u_decoded, dtype=np.int64)
    pos = np.clip(np.searchsorted(table[order], v), 0, 255)
    codes = order[pos]
    if not np.array_equal(table[codes], v):
        raise ValueError(f"values that are not {law} decoded levels")
    return codes.astype(np.uint8)


def check_inside(u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """True when every sample lies in its interval."""
    return bool(np.all((u >= lo) & (u < hi)))


def centre(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Middle of each interval, rounded down (the model-free 'bin-centre' restore). -> int64."""
    return (np.asarray(lo, dtype=np.int64) + np.asarray(hi, dtype=np.int64)) // 2


def restore_simple(lo: np.ndarray, hi: np.ndarray, method: str, rate: int = 16000) -> np.ndarray:
    """Model-free restore inside known intervals: ``zero`` -> lo (toward -32768, what playing an
    8-bit file as 16-bit does), ``bin-centre`` -> the middle, ``lmmse`` -> the classical estimate
    of ``classical.py`` (a short-time Wiener filter mixed with a local interpolator, kept inside each
    bin; ``rate`` in Hz sets their windows). lo, hi int [C, T] -> int64 [C, T]."""
    if method == "zero":
        return np.asarray(lo, dtype=np.int64)
    if method == "bin-centre":
        return centre(lo, hi)
    if method == "lmmse":
        from .classical import interval_mean  # numba: imported only when used

        return interval_mean(lo, hi, rate)
    raise ValueError(f"unknown method {method!r}")
