"""Lossless codec: ``.uad`` files, coded with the Upscale ARDM and rANS (constriction).

Samples are coded stage by stage, most significant first. Inside a stage a fixed random order
(keyed by the header's seed and the absolute sample index) and the model's DP policy split the
positions into K segments; one network call per segment gives the probabilities of all of its
positions, and an ANS coder (constriction's ``AnsCoder`` with ``Categorical(perfect=False)``) codes
their digits. No bits-back is needed: the cost is exactly the policy's code length
(``bpd --steps K``) plus the coder's rounding, well under 1 %.

ANS is a stack: symbols come out in the reverse order they went in. The decoder must run the
calls first to last (each call needs the digits of the earlier ones), so the encoder, which knows
every value and can run any call at any time, runs them last to first: stages, calls, windows and
positions all reversed. The network runs one window at a time (batch 1, fixed chunk length and
threads), so both sides compute bit-identical probabilities.

Layout (little-endian)::

    "UADC"  format u8  header-length u32  header  header-CRC32 u32
    per block:  frames u32 (0 ends the file)  coded-stages u8  PCM-CRC32 u32  words u32  words x u32

The header holds the model identity (BLAKE2b of its weights), the schedule, the policy (fractions
of the block in 1/65536 per stage), the seed, chunk and block lengths, sample rate, channels,
frames, the PCM subtype, and the environment (library versions, CPU kernel family, threads).
Decoding refuses another model or environment with a one-line reason; a mismatch that slips
through fails the block's CRC and is never written out. Memory is bounded by one block.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from . import __version__, ardm, audio, bits
from .checkpoint import LoadedModel
from .errors import UserError
from .inference import ChunkedRunner, Window, windows

MAGIC = b"UADC"
FORMAT_VERSION = 1
SUFFIX = ".uad"
POLICY_SCALE = 65536  # policy fractions are stored as multiples of 1 / POLICY_SCALE
DEFAULT_BLOCK_FRAMES = 1 << 20  # about 24 s at 44.1 kHz; each block is coded on its own
DEFAULT_CHUNK = 16000  # network window core (samples), as for enhance on the CPU
# WAV subtypes the decoder rebuilds (8-bit PCM is unsigned in WAV); other encodings are stored as
# their decoded 16-bit PCM.
SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
_SUBTYPE_ALIASES = {"PCM_S8": "PCM_U8"}
_FIXED = struct.Struct("<16sIHQBQIIB")  # hash, rate, channels, frames, subtype, seed, chunk, block, n_stages
_BLOCK = struct.Struct("<IBII")  # frames, coded stages, PCM CRC32, words

Progress = Callable[[int], None]


def _categorical():  # type: ignore[no-untyped-def]
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


def weights_hash(lm: LoadedModel) -> bytes:
    """16-byte BLAKE2b of the model's weights (names, shapes and bytes, in name order)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(lm.model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


def environment(threads: int) -> dict[str, str]:
    """What must match between encoder and decoder for bit-identical network outputs."""
    return {
        "upscale-audio": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "constriction": importlib.metadata.version("constriction"),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "threads": str(threads),
    }


@dataclass
class Header:
    """Everything the decoder needs besides the model."""

    model_hash: bytes
    rate: int
    channels: int
    frames: int
    subtype: str
    seed: int
    chunk: int
    block_frames: int
    schedule: tuple[int, ...]
    policy: list[np.ndarray]  # per stage: uint16 [K] fractions x POLICY_SCALE, first 0, increasing
    env: dict[str, str]

    def pack(self) -> bytes:
        k = len(self.policy[0])
        body = _FIXED.pack(self.model_hash, self.rate, self.channels, self.frames, SUBTYPES.index(self.subtype),
                           self.seed, self.chunk, self.block_frames, len(self.schedule))
        body += bytes(self.schedule) + struct.pack("<H", k)
        body += b"".join(np.asarray(p, dtype="<u2").tobytes() for p in self.policy)
        env = ";".join(f"{a}={b}" for a, b in self.env.items()).encode()
        body += struct.pack("<H", len(env)) + env
        return MAGIC + bytes([FORMAT_VERSION]) + struct.pack("<I", len(body)) + body + \
            struct.pack("<I", zlib.crc32(body))

    @classmethod
    def read(cls, f: BinaryIO, name: str) -> Header:
        head = f.read(9)
        if len(head) < 4 or head[:4] != MAGIC:
            raise UserError(f"{name}: not an upscale-audio .uad file (wrong magic bytes)")
        if len(head) < 9:
            raise UserError(f"{name}: truncated inside its header; the file is incomplete")
        if head[4] != FORMAT_VERSION:
            raise UserError(f"{name}: .uad format version {head[4]} is not supported (this upscale-audio "
                            f"{__version__} reads version {FORMAT_VERSION})")
        (n,) = struct.unpack("<I", head[5:9])
        body, crc = f.read(n), f.read(4)
        if len(body) < n or len(crc) < 4:
            raise UserError(f"{name}: truncated inside its header; the file is incomplete")
        if zlib.crc32(body) != struct.unpack("<I", crc)[0]:
            raise UserError(f"{name}: header is corrupted (CRC mismatch)")
        try:
            mh, rate, ch, frames, sub, seed, chunk, block, ns = _FIXED.unpack_from(body)
            o = _FIXED.size
            schedule = tuple(body[o : o + ns])
            o += ns
            (k,) = struct.unpack_from("<H", body, o)
            o += 2
            policy = []
            for _ in range(ns):
                policy.append(np.frombuffer(body, dtype="<u2", count=k, offset=o).astype(np.int64))
                o += 2 * k
            (ne,) = struct.unpack_from("<H", body, o)
            env = dict(item.split("=", 1) for item in body[o + 2 : o + 2 + ne].decode().split(";"))
            return cls(mh, rate, ch, frames, SUBTYPES[sub], seed, chunk, block, schedule, policy, env)
        except (struct.error, IndexError, ValueError, UnicodeDecodeError):
            raise UserError(f"{name}: header is corrupted (unreadable fields)") from None


def quantised_policy(lm: LoadedModel, steps: int) -> list[np.ndarray]:
    """The model's DP policy for K = ``steps`` calls per stage, as fractions x POLICY_SCALE."""
    if lm.known_bits != 0:
        raise UserError(f"the codec needs a model of all 16 bits; this one assumes {lm.known_bits} known bits")
    pol = lm.policies(steps)
    out = []
    for s in range(len(lm.config.ardm.schedule)):
        q = np.floor(np.asarray(pol[s], dtype=np.float64) * POLICY_SCALE + 0.5).astype(np.int64)
        out.append(np.clip(q, 0, POLICY_SCALE))
    return out


def _segments(q: np.ndarray) -> list[tuple[float, float]]:
    return ardm.stage_segments(np.asarray(q, dtype=np.float64) / POLICY_SCALE)


def coded_stages(u: np.ndarray, schedule: tuple[int, ...]) -> int:
    """How many stages (from the top) a block needs: stages whose bits are zero in every sample
    (the low byte of 8-bit material) are skipped."""
    zeros = 16 - bits.significant_bits(u)
    maps = ardm.StageMaps(schedule)
    return sum(1 for s in range(maps.S) if maps.lows[s] + maps.schedule[s] > zeros)


@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic kernels while coding (restored afterwards)."""
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


class _BlockCoder:
    """The network calls of one block, shared by encoder and decoder."""

    def __init__(self, runner: ChunkedRunner, header: Header, frame0: int, n: int, n_coded: int):
        self.runner, self.h, self.frame0, self.n = runner, header, frame0, n
        self.maps = ardm.StageMaps(header.schedule)
        self.row_keys = [bits.mix_key(header.seed, c) for c in range(header.channels)]
        self.calls = [(s, a, b) for s in range(n_coded) for a, b in _segments(header.policy[s])]
        self.windows = windows(n, header.channels, header.chunk, runner.halo)

    def probs(self, u: np.ndarray, w: Window, s: int, a: float, b: float
              ) -> tuple[np.ndarray, np.ndarray, torch.Tensor] | None:
        """Positions of window w's core revealed by the call (s, [a, b)), their digit probabilities
        for the coder and log2-probabilities for the cost: (core offsets int [n], float32 [n, 2**width],
        float64 [n, 2**width]), or None if there are none."""
        key = ardm.order_keys(self.row_keys[w.row], s, self.frame0 + np.arange(w.start, w.stop))
        c0 = w.core_start - w.start
        core = key[c0 : c0 + w.core_stop - w.core_start]
        idx = np.flatnonzero((core >= a) & (core < b))
        if not idx.size:
            return None
        low, hi_shift = self.maps.lows[s], self.maps.lows[s] + self.maps.schedule[s]
        cur = u[w.row, w.start : w.stop]
        revealed = key < a
        value = np.where(revealed, (cur >> low) << low, (cur >> hi_shift) << hi_shift)
        logits = self.runner.logits(value[None], revealed[None], np.array([s]), np.array([(s + a) / self.maps.S]))
        lg = logits[0, c0 + torch.from_numpy(idx)]
        p = torch.softmax(lg, dim=-1)
        # the cost from a float64 log-softmax: a float32 probability can underflow to 0
        log2p = torch.log_softmax(lg.double(), dim=-1) / math.log(2.0)
        return idx, p.cpu().numpy().astype(np.float32), log2p.cpu()


def encode_block(runner: ChunkedRunner, header: Header, u: np.ndarray, frame0: int,
                 progress: Progress | None = None) -> tuple[np.ndarray, int, float]:
    """Code one block. u: int64 [C, n] offset binary.

    Returns (ANS words uint32 [m], coded stages, the model's exact cost in bits for this block).
    """
    import constriction

    n_coded = coded_stages(u, header.schedule)
    bc = _BlockCoder(runner, header, frame0, u.shape[1], n_coded)
    coder = constriction.stream.stack.AnsCoder()
    cat = _categorical()
    cost = 0.0
    for s, a, b in reversed(bc.calls):
        low, mask = bc.maps.lows[s], (1 << bc.maps.schedule[s]) - 1
        for w in reversed(bc.windows):
            got = bc.probs(u, w, s, a, b)
            if got is None:
                continue
            idx, p, log2p = got
            digit = ((u[w.row, w.core_start + idx] >> low) & mask).astype(np.int32)
            coder.encode_reverse(digit, cat, p)
            cost -= float(log2p[torch.arange(len(idx)), torch.from_numpy(digit).long()].sum())
        if progress:
            progress(1)
    return np.asarray(coder.get_compressed(), dtype=np.uint32), n_coded, cost


def decode_block(runner: ChunkedRunner, header: Header, words: np.ndarray, frame0: int, n: int, n_coded: int,
                 progress: Progress | None = None) -> np.ndarray:
    """Inverse of :func:`encode_block`: int64 [C, n] offset binary."""
    import constriction

    bc = _BlockCoder(runner, header, frame0, n, n_coded)
    coder = constriction.stream.stack.AnsCoder(np.asarray(words, dtype=np.uint32))
    cat = _categorical()
    u = np.zeros((header.channels, n), dtype=np.int64)
    for s, a, b in bc.calls:
        low = bc.maps.lows[s]
        for w in bc.windows:
            got = bc.probs(u, w, s, a, b)
            if got is None:
                continue
            idx, p, _ = got
            digit = np.asarray(coder.decode(cat, p), dtype=np.int64)
            u[w.row, w.core_start + idx] += digit << low
        if progress:
            progress(1)
    if not coder.is_empty():
        raise ValueError("words left over")
    return u


# ------------------------------------------------------------------------------------ files
@dataclass
class CodecStats:
    frames: int
    channels: int
    rate: int
    bytes: int  # whole .uad file
    payload_bits: int  # ANS words only
    model_bits: float  # the model's exact cost under the same policy (compress only; nan on decode)
    seconds: float

    @property
    def samples(self) -> int:
        return self.frames * self.channels

    @property
    def bits_per_sample(self) -> float:
        return 8 * self.bytes / self.samples

    @property
    def realtime(self) -> float:
        return self.frames / self.rate / max(self.seconds, 1e-9)


def calls_per_file(frames: int, block_frames: int, schedule: tuple[int, ...], steps: int) -> int:
    """Upper bound of the network calls (progress total): blocks x stages x K."""
    return math.ceil(frames / block_frames) * len(schedule) * steps


def compress_file(src: Path, dst: str | Path, lm: LoadedModel, steps: int, *, seed: int = 0,
                  block_frames: int = DEFAULT_BLOCK_FRAMES, chunk: int = DEFAULT_CHUNK,
                  threads: int | None = None, progress: Progress | None = None) -> CodecStats:
    """Code the audio file ``src`` into ``dst`` (which is written, never renamed: callers do that)."""
    info = audio.probe(src)
    subtype = _SUBTYPE_ALIASES.get(info.subtype, info.subtype)
    subtype = subtype if subtype in SUBTYPES else "PCM_16"
    threads = threads or torch.get_num_threads()
    header = Header(weights_hash(lm), info.rate, info.channels, info.frames, subtype, seed & (2**64 - 1), chunk,
                    block_frames, tuple(lm.config.ardm.schedule), quantised_policy(lm, steps), environment(threads))
    runner = ChunkedRunner(lm.model, torch.device("cpu"), chunk, max_batch=1)
    t0, payload, cost, frame0 = time.perf_counter(), 0, 0.0, 0
    with deterministic(threads), open(dst, "wb") as f:
        f.write(header.pack())
        for block in audio.read_blocks(src, block_frames):
            u = block.astype(np.int64) + 32768
            words, n_coded, c = encode_block(runner, header, u, frame0, progress)
            f.write(_BLOCK.pack(u.shape[1], n_coded, zlib.crc32(block.tobytes()), len(words)))
            f.write(words.astype("<u4").tobytes())
            payload, cost, frame0 = payload + 32 * len(words), cost + c, frame0 + u.shape[1]
        if frame0 != info.frames:
            raise UserError(f"{src}: held {frame0} frames, its header promised {info.frames}; is it complete?")
        f.write(_BLOCK.pack(0, 0, 0, 0))
    size = os.path.getsize(dst)
    return CodecStats(info.frames, info.channels, info.rate, size, payload, cost, time.perf_counter() - t0)


def _check_layout(f: BinaryIO, h: Header, path: Path) -> None:
    """Walk the block headers (no decoding) and refuse a file whose blocks do not add up to the
    header's frames or that has bytes after its end block: damage is found before any model runs."""
    start = f.tell()
    size = os.fstat(f.fileno()).st_size
    frames, pos = 0, start
    while True:
        raw = f.read(_BLOCK.size)
        if len(raw) < _BLOCK.size:
            raise UserError(f"{path}: truncated after {frames} of {h.frames} frames; the file is incomplete")
        n, _, _, n_words = _BLOCK.unpack(raw)
        pos += _BLOCK.size + 4 * n_words
        if n == 0:
            break
        frames += n
        if pos > size:
            raise UserError(f"{path}: truncated after {frames - n} of {h.frames} frames; the file is incomplete")
        f.seek(pos)
    if frames != h.frames:
        raise UserError(f"{path}: its blocks hold {frames} frames but the header says {h.frames}; the file is damaged")
    if pos != size:
        raise UserError(f"{path}: {size - pos} unexpected byte(s) after the end of the coded data; the file is damaged "
                        "or something was appended to it")
    f.seek(start)


def open_uad(path: Path, lm: LoadedModel) -> tuple[BinaryIO, Header]:
    """Open a .uad file and check that this model and environment can decode it."""
    f = open(path, "rb")
    try:
        h = Header.read(f, str(path))
        if h.model_hash != weights_hash(lm):
            raise UserError(f"{path}: coded with another model (weights {h.model_hash.hex()[:12]}, this one "
                            f"{weights_hash(lm).hex()[:12]}); pass the same --model")
        if tuple(h.schedule) != tuple(lm.config.ardm.schedule):
            raise UserError(f"{path}: header schedule {list(h.schedule)} does not match the model's")
        if h.frames == 0 or h.channels == 0 or h.rate == 0 or h.block_frames == 0:
            raise UserError(f"{path}: header is corrupted (no frames, channels or rate)")
        _check_layout(f, h, path)
        here = environment(int(h.env.get("threads", "1")))
        diff = [f"{k} {h.env.get(k)} (here {v})" for k, v in here.items() if h.env.get(k) != v]
        if diff:
            raise UserError(f"{path}: coded in another environment: {', '.join(diff)}; decoding needs "
                            "bit-identical network outputs, so decode it where it was coded")
    except BaseException:
        f.close()
        raise
    return f, h


def iter_decode(path: Path, lm: LoadedModel, progress: Progress | None = None) -> Iterator[tuple[Header, np.ndarray]]:
    """Decode a .uad file block by block: yields (header, int16 [C, n]). Raises UserError for
    corrupted, truncated or foreign files before yielding any block that fails its CRC."""
    f, h = open_uad(path, lm)
    with f:
        runner = ChunkedRunner(lm.model, torch.device("cpu"), h.chunk, max_batch=1)
        frame0, n_block = 0, 0
        with deterministic(int(h.env["threads"])):
            while True:
                raw = f.read(_BLOCK.size)
                if len(raw) < _BLOCK.size:
                    raise UserError(f"{path}: truncated after {frame0} of {h.frames} frames; the file is incomplete")
                n, n_coded, crc, n_words = _BLOCK.unpack(raw)
                if n == 0:
                    break
                if frame0 + n > h.frames or n > h.block_frames or n_coded > len(h.schedule):
                    raise UserError(f"{path}: block {n_block} is corrupted (impossible sizes)")
                data = f.read(4 * n_words)
                if len(data) < 4 * n_words:
                    raise UserError(f"{path}: truncated inside block {n_block}; the file is incomplete")
                words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
                try:
                    u = decode_block(runner, h, words, frame0, n, n_coded, progress)
                except (ValueError, RuntimeError, OverflowError):
                    u = None
                pcm = None if u is None else (u - 32768).astype(np.int16)
                if pcm is None or zlib.crc32(pcm.tobytes()) != crc:
                    raise UserError(f"{path}: block {n_block} fails its CRC check (corrupted file, or network outputs "
                                    "that differ from the encoder's); nothing written")
                yield h, pcm
                frame0, n_block = frame0 + n, n_block + 1
            if frame0 != h.frames or f.read(1):
                raise UserError(f"{path}: corrupted (holds {frame0} frames, header says {h.frames}, or trailing data)")


def decompress_file(src: Path, dst: str | Path, lm: LoadedModel, progress: Progress | None = None) -> CodecStats:
    """Decode ``src`` into the WAV file ``dst`` (the stored subtype; callers rename it into place)."""
    import soundfile as sf

    t0 = time.perf_counter()
    out: sf.SoundFile | None = None
    h: Header | None = None
    with open(dst, "wb") as fh:  # a file object: any file name works
        try:
            for h, pcm in iter_decode(src, lm, progress):
                if out is None:
                    out = sf.SoundFile(fh, "w", h.rate, h.channels, h.subtype, format="WAV")
                out.write(pcm.T)
        finally:
            if out is not None:
                out.close()
    assert h is not None  # open_uad refuses files without frames
    return CodecStats(h.frames, h.channels, h.rate, os.path.getsize(src), 0, float("nan"), time.perf_counter() - t0)


def verify(src: Path, uad: Path, lm: LoadedModel, progress: Progress | None = None) -> None:
    """Decode ``uad`` and compare it with the audio of ``src``, sample for sample."""
    originals = None
    for h, pcm in iter_decode(uad, lm, progress):
        if originals is None:
            originals = audio.read_blocks(src, h.block_frames)
        ref = next(originals, None)
        if ref is None or ref.shape != pcm.shape or not np.array_equal(ref, pcm):
            raise UserError(f"{uad}: --verify failed: decoded audio differs from {src}; the file was not kept")
    if originals is None or next(originals, None) is not None:
        raise UserError(f"{uad}: --verify failed: decoded audio is shorter than {src}; the file was not kept")
