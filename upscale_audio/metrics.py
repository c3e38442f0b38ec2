"""Restoration metrics: SNR, segmental SNR and log-spectral distance (LSD), the measures of the
audio super-resolution literature, plus side-by-side spectrograms.

Arrays are int16 (or any numeric) [channels, frames]; metrics pool all channels. The STFT and the
spectrogram display are librosa's (the optional ``compare`` extra: ``pip install
'upscale-audio[compare]'``); SNR needs nothing beyond numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError

N_FFT = 2048  # LSD as in Kuleshov et al. (2017) and later audio super-resolution papers
HOP = 512
SEG_MS = 20.0  # segmental SNR frames, clipped to [-10, 35] dB per frame (the usual convention)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - est)^2) over all samples (inf if identical)."""
    r, e = np.asarray(ref, dtype=np.float64), np.asarray(est, dtype=np.float64)
    err = float(np.sum((r - e) ** 2))
    return float("inf") if err == 0 else float(10 * np.log10(max(float(np.sum(r**2)), 1e-12) / err))


def segmental_snr_db(ref: np.ndarray, est: np.ndarray, rate: int) -> float:
    """Mean over 20 ms frames of the frame SNR clipped to [-10, 35] dB."""
    r = np.asarray(ref, dtype=np.float64).reshape(-1, np.shape(ref)[-1])
    e = np.asarray(est, dtype=np.float64).reshape(r.shape)
    n = max(1, int(rate * SEG_MS / 1000))
    vals = []
    for c in range(r.shape[0]):
        for a in range(0, r.shape[1] - n + 1, n):
            sig = np.sum(r[c, a : a + n] ** 2)
            err = np.sum((r[c, a : a + n] - e[c, a : a + n]) ** 2)
            vals.append(35.0 if err == 0 else np.clip(10 * np.log10(max(sig, 1e-12) / err), -10.0, 35.0))
    return float(np.mean(vals)) if vals else float("nan")


def _librosa():  # type: ignore[no-untyped-def]
    try:
        import librosa
    except ImportError:
        raise UserError("this needs librosa: pip install 'upscale-audio[compare]'") from None
    return librosa


def log_power_spectrogram(x: np.ndarray) -> np.ndarray:
    """log10 |STFT|^2 of one channel (float, 16-bit scale) -> [freq, frames]."""
    S = np.abs(_librosa().stft(np.asarray(x, dtype=np.float32) / 32768.0, n_fft=N_FFT, hop_length=HOP)) ** 2
    return np.log10(S + 1e-10)


def lsd(ref: np.ndarray, est: np.ndarray) -> float:
    """Log-spectral distance: mean over frames of sqrt(mean over frequencies of (L_ref - L_est)^2),
    L = log10 |STFT|^2 (n_fft 2048, hop 512), pooled over channels."""
    r = np.asarray(ref).reshape(-1, np.shape(ref)[-1])
    e = np.asarray(est).reshape(r.shape)
    per = [np.sqrt(np.mean((log_power_spectrogram(r[c]) - log_power_spectrogram(e[c])) ** 2, axis=0))
           for c in range(r.shape[0])]
    return float(np.mean(np.concatenate(per)))


def spectrogram_png(path: Path, signals: dict[str, np.ndarray], rate: int) -> None:
    """Spectrograms (first channel) side by side, one panel per named signal, written to ``path``."""
    librosa = _librosa()
    try:
        import librosa.display
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--png needs matplotlib: pip install 'upscale-audio[compare]'") from None
    fig, axes = plt.subplots(1, len(signals), figsize=(4 * len(signals), 3.2), sharey=True, squeeze=False)
    for ax, (name, x) in zip(axes[0], signals.items()):
        x1 = np.asarray(x).reshape(-1, np.shape(x)[-1])[0]
        db = 10 * log_power_spectrogram(x1)
        librosa.display.specshow(db, sr=rate, hop_length=HOP, x_axis="time", y_axis="hz", ax=ax, vmin=-120, vmax=0)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
