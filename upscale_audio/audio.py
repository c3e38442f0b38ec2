"""Reading and writing audio files (soundfile), as int16 samples ``[C, T]`` plus facts about them.

8-bit unsigned WAV samples v map to u = v * 256 (s = (v - 128) * 256), which is what soundfile's
int16 conversion does. Files with more than 16 significant bits (24-bit, float) are read as
``AudioFile.samples = None`` with ``significant_bits`` > 16, so callers can refuse them clearly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from . import intervals
from .errors import UserError
from .files import replacing

AUDIO_SUFFIXES = {".wav", ".flac", ".aif", ".aiff", ".ogg", ".au", ".snd", ".caf", ".w64", ".rf64"}
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


@dataclass
class AudioFile:
    """One decoded file. ``samples``: int16 [C, T] (None when it has more than 16 significant bits)."""

    path: Path
    samples: np.ndarray | None
    rate: int
    subtype: str
    channels: int
    frames: int
    significant_bits: int  # 1..16, or 24/32 for deeper material

    @property
    def u(self) -> np.ndarray:
        """Offset-binary samples, int64 [C, T] in [0, 65535]."""
        assert self.samples is not None
        return self.samples.astype(np.int64) + 32768


def _sf_name(p: Path) -> Any:
    """What to hand soundfile for a path: the name, or (names that are not valid UTF-8, which
    libsndfile cannot take) an open binary file."""
    name = str(p)
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return open(p, "rb")  # noqa: SIM115 - soundfile closes what it reads to the end; GC does the rest


def read(path: str | Path) -> AudioFile:
    """Decode any file soundfile reads. Raises :class:`UserError` with a one-line reason otherwise."""
    p = Path(path)
    info = probe(p)
    try:
        if info.subtype in ("FLOAT", "DOUBLE"):
            # float files: exact 16-bit material is k / 32768; anything else is deeper than 16 bits
            xf = sf.read(_sf_name(p), dtype="float64", always_2d=True)[0] * 32768.0
            ok = np.all(xf == np.round(xf)) and np.all(np.abs(xf) <= 32768) and np.all(xf < 32768)
            data = (np.round(xf).astype(np.int64) << 16) if ok else np.ones_like(xf, dtype=np.int64)
        else:
            data = sf.read(_sf_name(p), dtype="int32", always_2d=True)[0]
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        msg = str(e).split("\n")[0]
        raise UserError(f"{p}: cannot read as audio ({msg}); is it a WAV/FLAC file and complete?") from None
    if data.shape[0] == 0:
        raise UserError(f"{p}: contains no samples (0 frames); nothing to process")
    x32 = data.T.astype(np.int64)  # [C, T], int32 scale
    low16 = np.bitwise_or.reduce(x32.ravel() & 0xFFFF)
    if low16 != 0:
        deep = 32 if info.subtype in ("FLOAT", "DOUBLE", "PCM_32") else 24
        return AudioFile(p, None, info.rate, info.subtype, info.channels, data.shape[0], deep)
    samples = (x32 >> 16).astype(np.int16)
    sig = significant_bits(samples)
    return AudioFile(p, samples, info.rate, info.subtype, info.channels, data.shape[0], sig)


def significant_bits(samples: np.ndarray) -> int:
    """High bits in use: 16 minus the trailing zero bits all samples share, on u = s + 32768
    (silence, u = 32768, has one). Signed samples int [...] -> 1..16."""
    acc = int(np.bitwise_or.reduce((samples.astype(np.int64) + 32768).ravel())) if samples.size else 0
    if acc == 0:
        return 1
    return 16 - min((acc & -acc).bit_length() - 1, 15)


@dataclass
class StreamInfo:
    """What a streaming reader needs to know about a file before reading it."""

    rate: int
    channels: int
    frames: int
    subtype: str


def probe(path: str | Path) -> StreamInfo:
    """Header facts of an audio file, with the same one-line refusals as :func:`read`."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file; check the path")
    if p.is_dir():
        raise UserError(f"{p}: is a directory; pass audio files or use a directory input")
    try:
        info = sf.info(_sf_name(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        msg = str(e).split("\n")[0]
        raise UserError(f"{p}: cannot read as audio ({msg}); is it a WAV/FLAC file and complete?") from None
    if info.frames <= 0:
        raise UserError(f"{p}: contains no samples (0 frames); nothing to process")
    declared = _wav_declared_frames(p, info.channels)
    if declared is not None and declared > info.frames:
        raise UserError(f"{p}: truncated (header promises {declared} frames, file holds {info.frames}); "
                        "re-export or re-download it")
    return StreamInfo(info.samplerate, info.channels, info.frames, info.subtype)


def read_blocks(path: str | Path, block_frames: int) -> Iterator[np.ndarray]:
    """Yield the file as int16 blocks [C, <= block_frames] (memory bounded by the block).

    Raises :class:`UserError` if a block holds material deeper than 16 bits.
    """
    p = Path(path)
    with sf.SoundFile(_sf_name(p)) as f:
        is_float = f.subtype in ("FLOAT", "DOUBLE")
        while True:
            if is_float:
                xf = f.read(block_frames, dtype="float64", always_2d=True) * 32768.0
                if not len(xf):
                    return
                if not (np.all(xf == np.round(xf)) and np.all(xf >= -32768) and np.all(xf < 32768)):
                    raise UserError(f"{p}: holds float samples that are not 16-bit values; only 16-bit material "
                                    "can be coded")
                yield np.round(xf).astype(np.int16).T.copy()
                continue
            x = f.read(block_frames, dtype="int32", always_2d=True)
            if not len(x):
                return
            if np.bitwise_or.reduce(x.ravel() & 0xFFFF) != 0:
                raise UserError(f"{p}: holds samples deeper than 16 bits; only 16-bit material can be coded")
            yield (x >> 16).astype(np.int16).T.copy()


def _wav_declared_frames(p: Path, channels: int) -> int | None:
    """Frames that a RIFF/WAVE header's data chunk declares (None if not a plain WAV)."""
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = None
        while True:
            ch = f.read(8)
            if len(ch) < 8:
                return None
            cid, size = ch[:4], int.from_bytes(ch[4:], "little")
            if cid == b"fmt ":
                fmt = f.read(size + (size & 1))
                block = int.from_bytes(fmt[12:14], "little")
            elif cid == b"data":
                if not block or size in (0, 0xFFFFFFFF):
                    return None
                return size // block
            else:
                f.seek(size + (size & 1), 1)


def find_audio(inputs: list[Path], suffixes: set[str] | None = None) -> list[tuple[Path, Path]]:
    """Expand files and directories into (file, path relative to its input root) pairs.

    A directory is walked recursively for files with an audio suffix (or one of ``suffixes``); an
    explicit file is taken as it is (its relative path is its name). Raises :class:`UserError` for
    missing paths and for directories without such files.
    """
    wanted = suffixes or AUDIO_SUFFIXES
    out: list[tuple[Path, Path]] = []
    for inp in inputs:
        if not inp.exists():
            raise UserError(f"{inp}: no such file or directory; check the path")
        if inp.is_dir():
            found = sorted(
                f for f in inp.rglob("*") if f.is_file() and f.suffix.lower() in wanted
            )
            if not found:
                if suffixes:
                    raise UserError(f"{inp}: directory holds no {'/'.join(sorted(suffixes))} files")
                raise UserError(f"{inp}: directory holds no audio files ({', '.join(sorted(WRITE_FORMATS))}, ...)")
            out += [(f, f.relative_to(inp)) for f in found]
        else:
            out.append((inp, Path(inp.name)))
    return out


def check_writable(path: Path, force: bool, suffixes: tuple[str, ...] = tuple(WRITE_FORMATS)) -> None:
    """Raise :class:`UserError` if ``path`` exists (without force) or cannot be created."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{path}: output must end in {' or '.join(suffixes)}")
    if path.exists() and not force:
        raise UserError(f"{path}: exists; use --force to overwrite or -o to choose another name")
    if path.exists() and path.is_dir():
        raise UserError(f"{path}: is a directory; choose a file name")
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:  # a new folder: its first existing ancestor
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"{path}: {existing} is a file, not a folder; choose another output with -o")
    if existing.exists() and not os.access(existing, os.W_OK):
        raise UserError(f"{path}: folder {existing} is not writable; choose another output with -o")


def write(path: str | Path, samples: np.ndarray, rate: int, force: bool = False, subtype: str = "PCM_16") -> None:
    """Write int16 [C, T] as PCM (WAV or FLAC by suffix), atomically: temp file, then rename.

    Never replaces an existing file unless ``force``; a failed write leaves nothing behind.
    """
    p = Path(path)
    check_writable(p, force)
    assert samples.dtype == np.int16 and samples.ndim == 2, (samples.dtype, samples.shape)
    with replacing(p, force) as tmp, open(tmp, "wb") as fh:  # a file object: any name works
        sf.write(fh, samples.T, rate, subtype=subtype, format=WRITE_FORMATS[p.suffix.lower()])


def write_u8(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write the top 8 bits of int16 [C, T] as an 8-bit unsigned WAV (for samples and tests)."""
    u = samples.astype(np.int64) + 32768
    s = ((u >> 8) << 8) - 32768
    with open(path, "wb") as fh:
        sf.write(fh, s.astype(np.int16).T, rate, subtype="PCM_U8", format="WAV")


# ------------------------------------------------------------------ what an input already knows
FORMAT_BITS = {"PCM_U8": 8, "PCM_S8": 8}  # linear formats narrower than 16 bits
G711 = {"ULAW": "ulaw", "ALAW": "alaw"}
LAW_NAMES = {"ulaw": "mu-law", "alaw": "A-law"}
MIN_EVIDENCE_SAMPLES = 4096  # depth detection in a 16-bit container needs this many samples
MIN_EVIDENCE_VALUES = 32  # ... and this many distinct non-zero values


@dataclass
class Known:
    """What a file tells about each sample: a linear depth (top ``bits`` known) or a G.711 law,
    and what decided it (``source``: format, detected, --bits, or silence)."""

    kind: str  # "linear", "ulaw", "alaw"
    bits: int  # linear: known top bits (16: nothing to restore); G.711: 8 (bits per code)
    source: str

    def intervals(self, a: AudioFile) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi) of every sample, int64 [C, T] each."""
        if self.kind == "linear":
            return intervals.linear(a.u, self.bits)
        return intervals.g711(intervals.decoded_to_codes(a.u, self.kind), self.kind)

    def describe(self) -> str:
        what = f"{self.bits} known bits" if self.kind == "linear" else f"G.711 {LAW_NAMES[self.kind]}"
        return f"{what} ({self.source})"


def decide_known(a: AudioFile, bits: int | None = None, law: str | None = None) -> Known:
    """The format decides first; values only with evidence; ``bits``/``law`` (the user) override.

    * 8-bit PCM: 8 known bits, whatever the values (a silent or sparse 8-bit file keeps its bytes);
    * mu-law / A-law: the G.711 bins of each code;
    * 16-bit container: the bits in use, when there are at least MIN_EVIDENCE_SAMPLES samples with
      MIN_EVIDENCE_VALUES distinct non-zero values; digital silence has nothing to restore (16).
    Raises :class:`UserError` when a 16-bit file gives no evidence and no ``bits`` is given.
    """
    if law is not None:  # headerless G.711 (--raw): the user says the law
        return Known(law, 8, "--raw")
    if bits is not None:
        return Known("linear", bits, "--bits")
    if a.subtype in G711:
        return Known(G711[a.subtype], 8, "format")
    if a.subtype in FORMAT_BITS:
        return Known("linear", FORMAT_BITS[a.subtype], f"format {a.subtype}")
    assert a.samples is not None
    if not np.any(a.samples):
        return Known("linear", 16, "digital silence")
    if a.significant_bits >= 16:
        return Known("linear", 16, "detected")
    nz = a.samples[a.samples != 0]
    distinct = len(np.unique(nz[: 1 << 20]))
    if a.samples.size < MIN_EVIDENCE_SAMPLES or distinct < MIN_EVIDENCE_VALUES:
        raise UserError(f"{a.path}: a {a.subtype} file whose values use only {a.significant_bits} bits, but with "
                        f"{a.samples.size} samples and {distinct} distinct values that is no evidence of its depth; "
                        "pass --bits N to say how many top bits are known")
    return Known("linear", a.significant_bits, "detected")


def read_g711_raw(path: str | Path, law: str, rate: int) -> AudioFile:
    """A headerless G.711 dump (mono, one byte per sample) as an AudioFile of decoded values."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file; check the path")
    data = p.read_bytes()
    if not data:
        raise UserError(f"{p}: empty file; nothing to process")
    codes = np.frombuffer(data, dtype=np.uint8)
    u = intervals.decoded(law)[codes]
    samples = (u - 32768).astype(np.int16)[None]
    sub = {"ulaw": "ULAW", "alaw": "ALAW"}[law]
    return AudioFile(p, samples, int(rate), sub, 1, len(codes), 8)
