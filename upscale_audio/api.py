"""The Python API: restore arrays, score files, compress and decompress bytes.

Everything here takes and returns plain numpy arrays of int16 samples, shape [channels, frames]
(a 1-D array is one channel), the way soundfile reads them with ``dtype="int16", always_2d=True``
and a transpose. Models are loaded once per path and kept (``model=None``: the bundled one).

    import soundfile as sf
    import upscale_audio as ua

    x, rate = sf.read("clip.wav", dtype="int16", always_2d=True)    # x: int16 [frames, channels]
    y = ua.restore(x.T, bits=8, rate=rate)                            # int16 [channels, frames]
    print(ua.score("original.wav", given_bits=8).bits_per_sample)
    blob = ua.compress(x.T, rate)                                     # bytes (.uad)
    x2, rate2 = ua.decompress(blob)                                   # x2 == x.T, bit for bit
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from . import audio, classical, correction, intervals
from .checkpoint import load_cached, model_for, scoring_model
from .enhance import enhance_intervals
from .scoring import BpdResult, bits_per_sample


def _as_2d(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.dtype != np.int16:
        raise TypeError(f"samples must be int16 (got {x.dtype}); read files with dtype='int16'")
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"samples must be [channels, frames] with frames > 0, got shape {x.shape}")
    return x


def restore(
    samples: np.ndarray, *, bits: int | None = None, law: str | None = None, rate: int = 16000,
    mode: str = "mean", steps: int | None = None, method: str = "ardm", seed: int = 0,
    model: str | Path | None = None,
) -> np.ndarray:
    """Restore low-bit audio to 16 bits; every known value is kept.

    Args:
        samples: int16 [C, T] or [T]: linear samples whose top ``bits`` bits are known, or the
            decoded values of G.711 codes when ``law`` is "ulaw" or "alaw".
        bits: known top bits (1..15); give exactly one of ``bits`` and ``law``.
        rate: sample rate in Hz (the model was trained on 8, 16 and 44.1 kHz).
        mode: "mean" (posterior mean, fast) or "sample" (a draw, ``steps`` calls per stage).
        method: "ardm" (the model), "lmmse" (a classical estimate), "bin-centre" or "zero" (no model).
        model: a checkpoint (default: the bundled model that fits the input, ``checkpoint.model_for``:
            for 8..15 bits the low-byte one, its fast sibling for ``mode="mean"``; for ``law`` and
            under 8 bits the interval model). A G.711 mean with the bundled models is the ``lmmse``
            estimate (``classical.replaces_network``).
    Returns: int16 with the shape of ``samples``.
    """
    x = _as_2d(samples)
    if (bits is None) == (law is None):
        raise ValueError("give exactly one of bits= (linear PCM) and law= ('ulaw' or 'alaw')")
    if mode not in ("mean", "sample"):
        raise ValueError(f"mode must be 'mean' or 'sample', got {mode!r}")
    u = x.astype(np.int64) + 32768
    if law is not None:
        lo, hi = intervals.g711(intervals.decoded_to_codes(u, law), law)
    else:
        if not 1 <= int(bits or 0) <= 15:
            raise ValueError(f"bits must be in 1..15, got {bits}")
        lo, hi = intervals.linear(u, int(bits or 0))
    if method == "ardm" and classical.replaces_network(law, mode, bundled=model is None):
        # a G.711 mean: the classical estimate (classical.py) and its learned correction (correction.py)
        out = classical.interval_mean(lo, hi, rate, corr=correction.for_rate(rate))
    elif method == "ardm":
        ckpt = load_cached(model_for(model, lo, hi, law, mode), "auto")  # ONNX Runtime when the model has its .onnx
        out = enhance_intervals(lo, hi, ckpt, mode=mode, steps=steps, seed=seed, rate=rate).u
    else:
        out = intervals.restore_simple(lo, hi, method, rate)
    return (out - 32768).astype(np.int16).reshape(np.shape(samples))


def score(
    path: str | Path, *, given_bits: int | None = None, given_law: str | None = None, steps: int | str = "full",
    passes: int = 4, model: str | Path | None = None,
) -> BpdResult:
    """Bits per sample of a 16-bit recording under the model (``bpd``): all 16 bits, the bits below
    the top ``given_bits``, or what G.711 coding (``given_law``) leaves open. Returns a
    :class:`~upscale_audio.enhance.BpdResult` (``bits_per_sample``, ``stderr``, ``samples``, ...)."""
    a = audio.read(path)
    if a.samples is None or a.significant_bits < 16:
        raise ValueError(f"{path}: {a.significant_bits} significant bits; score 16-bit recordings")
    return bits_per_sample([a.u], load_cached(scoring_model(model, given_law)), given_bits=given_bits,
                           given_law=given_law, steps=steps, passes=passes)


def compress(samples: np.ndarray, rate: int, *, preset: str = "default", steps: int | None = None,
             model: str | Path | None = None) -> bytes:
    """Lossless: int16 [C, T] (or [T]) at ``rate`` Hz -> the bytes of a .uad file. ``preset``: fast,
    default or best (``steps``, calls per stage, overrides it)."""
    from . import codec

    x = _as_2d(samples)
    ckpt = load_cached(None if model is None else str(model))
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.wav", Path(d) / "out.uad"
        audio.write(src, x, int(rate))
        if preset not in codec.PRESETS:
            raise ValueError(f"preset must be one of {', '.join(codec.PRESETS)}, got {preset!r}")
        codec.compress_file(src, dst, ckpt, steps or codec.PRESETS[preset])
        return dst.read_bytes()


def decompress(data: bytes, *, model: str | Path | None = None) -> tuple[np.ndarray, int]:
    """The inverse of :func:`compress`: (int16 [C, T], rate)."""
    from . import codec

    ckpt = load_cached(None if model is None else str(model))
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.uad"
        src.write_bytes(data)
        parts, rate = [], 0
        for h, pcm in codec.iter_decode(src, ckpt):
            parts.append(pcm)
            rate = h.rate
        return np.concatenate(parts, axis=1).astype(np.int16), rate
