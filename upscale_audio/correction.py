"""A small learned correction of the classical estimate inside G.711 bins (numpy at inference).

The classical estimate (``classical.py``) is linear in its inputs and blind to what a recording
chain does to speech. A non-causal gated convolutional net (its ``Arch``: channels and dilations,
kept in the weights' metadata) reads, per sample, the bin's centre, the classical estimate and its
two halves (Wiener and local), the interpolator's location and scale, all over a running RMS of the
estimate, the log bin width, and where the estimate sits in its bin; it outputs a shift of the
estimate in bin widths, in (-1/2, 1/2). The sum is rounded and clipped into the bin,
so every known bit stays.

It is trained by ``scripts/train_correction.py`` on the corpus's train split (sox's mu-law and
A-law codes of speech and music) to minimise the squared error in sample units; the bundled
weights are ``models/g711_correction.npz``. ``forward_np`` (inference, no torch) has the torch
twin ``CorrectionNet`` (training, tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

N_FEATURES = 8
RMS_HALF = 128  # the running RMS spans 2 * RMS_HALF + 1 samples
MID = 32767.5  # offset-binary zero
CHUNK = 4096  # samples per piece of forward_np: cache-sized arrays (about 1 s for 60 s of 8 kHz audio here)
BUNDLED = Path(__file__).parent / "models" / "g711_correction.npz"


@dataclass(frozen=True)
class Arch:
    """The net's shape: ``channels`` wide, one gated layer per entry of ``dilations``."""

    channels: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 1, 2, 4, 8)

    @property
    def reach(self) -> int:
        """Samples a side that the convolutions read."""
        return sum(self.dilations)

    @property
    def context(self) -> int:
        """Samples a side that a corrected sample reads (the convolutions' reach and the features' RMS)."""
        return self.reach + RMS_HALF

    @classmethod
    def of(cls, meta: dict[str, Any]) -> Arch:
        """The shape a training wrote into its weights' ``meta`` (``Arch()`` where it wrote none)."""
        default = cls()
        return cls(int(meta.get("channels", default.channels)),
                   tuple(int(d) for d in meta.get("dilations", default.dilations)))

    def meta(self) -> dict[str, Any]:
        return {"channels": self.channels, "dilations": list(self.dilations)}


@dataclass
class Correction:
    """Weights (numpy float32) and what the training said about them (``meta``, which holds the ``Arch``)."""

    params: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def arch(self) -> Arch:
        return Arch.of(self.meta)


def features(lo: np.ndarray, hi: np.ndarray, local: np.ndarray, wiener: np.ndarray, mu: np.ndarray,
             sigma: np.ndarray, est: np.ndarray) -> np.ndarray:
    """The net's inputs for one channel: all [T] (lo, hi int; the rest float) -> float32 [8, T]."""
    lo = lo.astype(np.float64)
    width = hi.astype(np.float64) - lo
    centre = lo + (width - 1) / 2
    e0 = est - MID
    c = np.concatenate([[0.0], np.cumsum(e0 * e0)])
    idx = np.arange(len(est))
    a, b = np.maximum(idx - RMS_HALF, 0), np.minimum(idx + RMS_HALF + 1, len(est))
    rms = np.sqrt((c[b] - c[a]) / (b - a)) + 8.0
    return np.stack([(centre - MID) / rms, e0 / rms, (wiener - MID) / rms, (local - MID) / rms, (mu - MID) / rms,
                     np.log(sigma + 1.0) / 5, np.log(width) / 5, (est - centre) / width]).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def forward_np(params: dict[str, np.ndarray], x: np.ndarray, arch: Arch = Arch(), chunk: int = CHUNK) -> np.ndarray:
    """The net of shape ``arch`` on one channel's features: float32 [8, T] -> shift in bin widths,
    float32 [T] in (-1/2, 1/2). Zero padding at the ends, as ``CorrectionNet``. Runs in pieces of
    ``chunk`` samples with the net's reach as context either side (cache-sized arrays; the same
    numbers as one piece)."""
    T = x.shape[1]
    out = np.empty(T, dtype=np.float32)
    for a in range(0, T, chunk):
        b = min(T, a + chunk)
        a0, b0 = max(0, a - arch.reach), min(T, b + arch.reach)
        out[a:b] = _forward_piece(params, x[:, a0:b0], arch)[a - a0:b - a0]
    return out


def _forward_piece(params: dict[str, np.ndarray], x: np.ndarray, arch: Arch) -> np.ndarray:
    C = arch.channels
    h = params["inp_w"] @ x + params["inp_b"][:, None]
    for i, d in enumerate(arch.dilations):
        w = params[f"conv{i}_w"]
        z = w[:, :, 1] @ h + params[f"conv{i}_b"][:, None]  # tap t; taps t - d and t + d where they exist
        if d < h.shape[1]:
            z[:, d:] += w[:, :, 0] @ h[:, :-d]
            z[:, :-d] += w[:, :, 2] @ h[:, d:]
        gated = np.tanh(z[:C]) * _sigmoid(z[C:])
        h = h + params[f"res{i}_w"] @ gated + params[f"res{i}_b"][:, None]
    return (0.5 * np.tanh(params["out_w"] @ h + params["out_b"][:, None]))[0]


def apply(corr: Correction, lo: np.ndarray, hi: np.ndarray, local: np.ndarray, wiener: np.ndarray, mu: np.ndarray,
          sigma: np.ndarray, est: np.ndarray) -> np.ndarray:
    """The corrected estimate (float, not yet rounded): all [C, T]; est + shift * bin width."""
    out = np.empty(est.shape)
    for ch in range(est.shape[0]):
        x = features(lo[ch], hi[ch], local[ch], wiener[ch], mu[ch], sigma[ch], est[ch])
        out[ch] = est[ch] + forward_np(corr.params, x, corr.arch) * (hi[ch] - lo[ch])
    return out


def save(path: Path, params: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    arrays: dict[str, Any] = {k: v.astype(np.float32) for k, v in params.items()}
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)


def load(path: Path) -> Correction:
    """Weights written by ``save``; ValueError where they do not fit the shape their metadata names."""
    with np.load(path) as z:
        params = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    arch = Arch.of(meta)
    layers = sum(k.startswith("conv") and k.endswith("_w") for k in params)
    if "inp_w" not in params or params["inp_w"].shape != (arch.channels, N_FEATURES) or layers != len(arch.dilations):
        raise ValueError(f"{path}: weights do not fit {arch} (the shape in their metadata); "
                         "write them with scripts/train_correction.py")
    return Correction(params, meta, path)


@lru_cache(maxsize=1)
def bundled() -> Correction | None:
    """The shipped weights, or None where an installation lacks them (the classical estimate alone)."""
    return load(BUNDLED) if BUNDLED.is_file() else None


def for_rate(rate: int) -> Correction | None:
    """The shipped correction where it was trained for ``rate`` (its ``meta["rates"]``: 8 and 16 kHz),
    else None: at 44.1 kHz it moved the bundled organ recording by +0.45 dB (mu-law) and -0.09 dB (A-law)."""
    corr = bundled()
    return corr if corr is not None and rate in corr.meta.get("rates", ()) else None
