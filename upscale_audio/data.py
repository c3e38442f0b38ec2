"""Training data: folders of audio decoded once into an int16 cache, and random crops from it.

Every channel of every file becomes one stream; streams are concatenated (a crop may cross a file
boundary, which costs a discontinuity and nothing else). Files that are not real 16-bit material
(fewer than 16 significant bits, or deeper than 16 bits) are skipped with a warning, since they
would teach the model zeros or be rounded.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import audio
from .errors import UserError


@dataclass
class Corpus:
    """Concatenated offset-binary samples. ``u``: uint16 [N]."""

    u: np.ndarray
    files: int
    rates: tuple[int, ...]
    seconds: float

    def crops(self, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """Random crops -> long [batch, length]."""
        if len(self.u) < length:
            reps = -(-length // max(len(self.u), 1))
            self.u = np.tile(self.u, reps)
        starts = torch.randint(0, len(self.u) - length + 1, (batch,), generator=generator).numpy()
        idx = starts[:, None] + np.arange(length)[None]
        return torch.from_numpy(self.u[idx].astype(np.int64))

    def fixed_crops(self, count: int, length: int) -> torch.Tensor:
        """Deterministic, evenly spread crops for validation -> long [count, length]."""
        n = max(len(self.u) - length, 0)
        starts = np.linspace(0, n, count).astype(np.int64)
        idx = np.minimum(starts[:, None] + np.arange(length)[None], len(self.u) - 1)
        return torch.from_numpy(self.u[idx].astype(np.int64))


def _cache_key(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def load_corpus(inputs: list[Path], cache_dir: Path | None = None, quiet: bool = False) -> Corpus:
    """Decode every audio file under ``inputs`` (cached as .npy in ``cache_dir`` when given)."""
    files = [f for f, _ in audio.find_audio(inputs)]
    key = _cache_key(files)
    if cache_dir is not None:
        cached = cache_dir / f"corpus-{key}.npz"
        if cached.is_file():
            z = np.load(cached)
            return Corpus(z["u"], int(z["files"]), tuple(int(r) for r in z["rates"]), float(z["seconds"]))
    parts, rates, seconds, used = [], set(), 0.0, 0
    for f in files:
        try:
            a = audio.read(f)
        except UserError as e:
            print(f"warning: skipping {e}", file=sys.stderr)
            continue
        if a.samples is None or a.significant_bits < 16:
            if not quiet:
                print(f"warning: skipping {f}: {a.significant_bits} significant bits, not 16-bit material",
                      file=sys.stderr)
            continue
        parts += [ch.astype(np.int64) + 32768 for ch in a.samples]
        rates.add(a.rate)
        seconds += a.frames / a.rate
        used += 1
    if not parts:
        raise UserError(f"no usable 16-bit audio in {', '.join(map(str, inputs))}")
    u = np.concatenate(parts).astype(np.uint16)
    corpus = Corpus(u, used, tuple(sorted(rates)), seconds)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".corpus-{key}.tmp.npz"
        np.savez(tmp, u=u, files=used, rates=np.array(corpus.rates), seconds=seconds)
        tmp.replace(cache_dir / f"corpus-{key}.npz")
    return corpus
