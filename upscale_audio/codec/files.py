""".uad files: compress a file block by block, and decode, check and verify one.

Memory is bounded by one block; nothing is renamed here (callers write to a temp file and rename
it into place: ``jobs.run_to_temp``).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from .. import audio, policy
from ..checkpoint import LoadedModel
from ..engine import TorchNet, check_engine, open_onnx
from ..errors import UserError
from ..files import replacing
from ..runner import ChunkedRunner, Net
from .coder import decode_block, deterministic, encode_block
from .format import (
    BLOCK,
    DEFAULT_BLOCK_FRAMES,
    DEFAULT_CHUNK,
    SUBTYPE_ALIASES,
    SUBTYPES,
    Header,
    check_layout,
    coded_engine,
    environment,
    weights_hash,
)
from .presets import PRESETS  # noqa: F401 (re-exported)

Progress = Callable[[int], None]


def quantised_policy(ckpt: LoadedModel, steps: int) -> list[np.ndarray]:
    """The model's DP policy for K = ``steps`` calls per stage, as stored: int64 multiples of
    1 / POLICY_SCALE per stage."""
    if ckpt.known_bits != 0:
        raise UserError(f"the codec needs a model of all 16 bits; this one assumes {ckpt.known_bits} known bits")
    pol = ckpt.policies(steps)
    return [policy.quantise(pol[s]) for s in range(len(ckpt.config.ardm.schedule))]


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


def resolve_engine(ckpt: LoadedModel, engine: str) -> str:
    """The engine ``compress`` codes with: "onnx" when asked for, or ("auto") when the model has a
    usable ONNX network beside it (``engine.open_onnx``); else "torch"."""
    check_engine(engine)
    if engine == "torch" or ckpt.path is None:
        return "torch"
    net, _, why = open_onnx(ckpt.path, ckpt.sha256, 1)
    if net is None and engine == "onnx":
        raise UserError(f"{ckpt.path}: cannot code under ONNX Runtime: {why}; write its network with "
                        f"'upscale-audio export --onnx {ckpt.path}', or use --engine torch")
    return "onnx" if net is not None else "torch"


def codec_net(ckpt: LoadedModel, engine: str, threads: int) -> Net:
    """The network of the coder: PyTorch's raw logits (torch's softmax codes them), or ONNX
    Runtime's probabilities with a fixed thread count (both sides compute the same numbers)."""
    if engine == "torch":
        return TorchNet(ckpt.model)
    assert ckpt.path is not None
    net, _, why = open_onnx(ckpt.path, ckpt.sha256, threads)
    if net is None:
        raise UserError(f"{ckpt.path}: the file was coded under ONNX Runtime and {why}; decode it beside the "
                        "model's .onnx ('upscale-audio export --onnx' rewrites it from the same checkpoint)")
    return net


def compress_file(src: Path, dst: str | Path, ckpt: LoadedModel, steps: int, *, seed: int = 0,
                  block_frames: int = DEFAULT_BLOCK_FRAMES, chunk: int = DEFAULT_CHUNK,
                  threads: int | None = None, progress: Progress | None = None, engine: str = "torch") -> CodecStats:
    """Code the audio file ``src`` into ``dst`` (which is written, never renamed: callers do that).
    ``engine``: "torch" or "onnx" (``resolve_engine``); the header records it."""
    info = audio.probe(src)
    subtype = SUBTYPE_ALIASES.get(info.subtype, info.subtype)
    subtype = subtype if subtype in SUBTYPES else "PCM_16"
    threads = threads or torch.get_num_threads()
    header = Header(weights_hash(ckpt), info.rate, info.channels, info.frames, subtype, seed & (2**64 - 1), chunk,
                    block_frames, tuple(ckpt.config.ardm.schedule), quantised_policy(ckpt, steps),
                    environment(threads, engine))
    runner = ChunkedRunner(codec_net(ckpt, engine, threads), ckpt.halo, chunk, max_batch=1)
    t0, payload, cost, frame0 = time.perf_counter(), 0, 0.0, 0
    with deterministic(threads), open(dst, "wb") as f:
        f.write(header.pack())
        for block in audio.read_blocks(src, block_frames):
            u = block.astype(np.int64) + 32768
            words, n_coded, c = encode_block(runner, header, u, frame0, progress)
            f.write(BLOCK.pack(u.shape[1], n_coded, zlib.crc32(block.tobytes()), len(words)))
            f.write(words.astype("<u4").tobytes())
            payload, cost, frame0 = payload + 32 * len(words), cost + c, frame0 + u.shape[1]
        if frame0 != info.frames:
            raise UserError(f"{src}: held {frame0} frames, its header promised {info.frames}; is it complete?")
        f.write(BLOCK.pack(0, 0, 0, 0))
    size = os.path.getsize(dst)
    return CodecStats(info.frames, info.channels, info.rate, size, payload, cost, time.perf_counter() - t0)


def open_uad(path: Path, ckpt: LoadedModel) -> tuple[BinaryIO, Header]:
    """Open a .uad file and check that this model and environment can decode it."""
    f = open(path, "rb")
    try:
        h = Header.read(f, str(path))
        if h.model_hash != weights_hash(ckpt):
            raise UserError(f"{path}: coded with another model (weights {h.model_hash.hex()[:12]}, this one "
                            f"{weights_hash(ckpt).hex()[:12]}); pass the same --model")
        if tuple(h.schedule) != tuple(ckpt.config.ardm.schedule):
            raise UserError(f"{path}: header schedule {list(h.schedule)} does not match the model's")
        if h.frames == 0 or h.channels == 0 or h.rate == 0 or h.block_frames == 0:
            raise UserError(f"{path}: header is corrupted (no frames, channels or rate)")
        check_layout(f, h, path)
        here = environment(int(h.env.get("threads", "1")), coded_engine(h.env))
        diff = [f"{k} {h.env.get(k)} (here {v})" for k, v in here.items() if h.env.get(k) != v]
        if diff:
            raise UserError(f"{path}: coded in another environment: {', '.join(diff)}; decoding needs "
                            "bit-identical network outputs, so decode it where it was coded")
    except BaseException:
        f.close()
        raise
    return f, h


def iter_decode(path: Path, ckpt: LoadedModel, progress: Progress | None = None) -> Iterator[tuple[Header, np.ndarray]]:
    """Decode a .uad file block by block: yields (header, int16 [C, n]). Raises UserError for
    corrupted, truncated or foreign files before yielding any block that fails its CRC."""
    f, h = open_uad(path, ckpt)
    with f:
        runner = ChunkedRunner(codec_net(ckpt, coded_engine(h.env), int(h.env["threads"])), ckpt.halo, h.chunk,
                               max_batch=1)
        frame0, n_block = 0, 0
        with deterministic(int(h.env["threads"])):
            while True:
                raw = f.read(BLOCK.size)
                if len(raw) < BLOCK.size:
                    raise UserError(f"{path}: truncated after {frame0} of {h.frames} frames; the file is incomplete")
                n, n_coded, crc, n_words = BLOCK.unpack(raw)
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


def decompress_file(src: Path, dst: str | Path, ckpt: LoadedModel, progress: Progress | None = None) -> CodecStats:
    """Decode ``src`` into the WAV file ``dst`` (the stored subtype; callers rename it into place)."""
    import soundfile as sf

    t0 = time.perf_counter()
    out: sf.SoundFile | None = None
    h: Header | None = None
    with open(dst, "wb") as fh:  # a file object: any file name works
        try:
            for h, pcm in iter_decode(src, ckpt, progress):
                if out is None:
                    out = sf.SoundFile(fh, "w", h.rate, h.channels, h.subtype, format="WAV")
                out.write(pcm.T)
        finally:
            if out is not None:
                out.close()
    assert h is not None  # open_uad refuses files without frames
    return CodecStats(h.frames, h.channels, h.rate, os.path.getsize(src), 0, float("nan"), time.perf_counter() - t0)


def verify(src: Path, uad: Path, ckpt: LoadedModel, progress: Progress | None = None) -> None:
    """Decode ``uad`` and compare it with the audio of ``src``, sample for sample."""
    originals = None
    for h, pcm in iter_decode(uad, ckpt, progress):
        if originals is None:
            originals = audio.read_blocks(src, h.block_frames)
        ref = next(originals, None)
        if ref is None or ref.shape != pcm.shape or not np.array_equal(ref, pcm):
            raise UserError(f"{uad}: --verify failed: decoded audio differs from {src}; the file was not kept")
    if originals is None or next(originals, None) is not None:
        raise UserError(f"{uad}: --verify failed: decoded audio is shorter than {src}; the file was not kept")


Bar = Callable[[int, str], Any]  # (total calls, description) -> a context manager with .update(n)


def compress_path(src: Path, dst: Path, ckpt: LoadedModel, steps: int, *, verify_after: bool, force: bool,
                  engine: str = "torch",
                  bar: Bar) -> CodecStats:
    """``compress`` of one file: code ``src`` into ``dst`` atomically (and decode it again to compare
    with ``verify_after``: a file that does not verify is not kept)."""
    info = audio.probe(src)
    total = calls_per_file(info.frames, DEFAULT_BLOCK_FRAMES, ckpt.config.ardm.schedule, steps)
    with replacing(dst, force) as tmp:
        with bar(total, src.name) as b:
            st = compress_file(src, tmp, ckpt, steps, progress=b.update, engine=engine)
        if verify_after:
            with bar(total, f"verify {src.name}") as b:
                verify(src, Path(tmp), ckpt, b.update)
    return st


def decompress_path(src: Path, dst: Path, ckpt: LoadedModel, *, force: bool, bar: Bar) -> tuple[Header, CodecStats]:
    """``decompress`` of one file into ``dst`` atomically."""
    with open(src, "rb") as f:
        h = Header.read(f, str(src))
    total = calls_per_file(h.frames, h.block_frames, h.schedule, len(h.policy[0]))
    with replacing(dst, force) as tmp, bar(total, src.name) as b:
        st = decompress_file(src, tmp, ckpt, b.update)
    return h, st
