"""The ``.uad`` container: header, block records, and what must match to decode.

Layout (little-endian)::

    "UADC"  format u8  header-length u32  header  header-CRC32 u32
    per block:  frames u32 (0 ends the file)  coded-stages u8  PCM-CRC32 u32  words u32  words x u32

The header holds the model identity (BLAKE2b of its weights), the schedule, the policy (fractions
of the block in 1/65536 per stage), the seed, chunk and block lengths, sample rate, channels,
frames, the PCM subtype, and the environment (library versions, CPU kernel family, threads).
Decoding refuses another model or environment with a one-line reason; a mismatch that slips
through fails the block's CRC and is never written out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from .. import __version__
from ..checkpoint import LoadedModel
from ..errors import UserError

MAGIC = b"UADC"
FORMAT_VERSION = 1
SUFFIX = ".uad"
DEFAULT_BLOCK_FRAMES = 1 << 20  # about 24 s at 44.1 kHz; each block is coded on its own
DEFAULT_CHUNK = 16000  # network window core (samples), as for enhance on the CPU
# WAV subtypes the decoder rebuilds (8-bit PCM is unsigned in WAV); other encodings are stored as
# their decoded 16-bit PCM.
SUBTYPES = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
SUBTYPE_ALIASES = {"PCM_S8": "PCM_U8"}
_FIXED = struct.Struct("<16sIHQBQIIB")  # hash, rate, channels, frames, subtype, seed, chunk, block, n_stages
BLOCK = struct.Struct("<IBII")  # frames, coded stages, PCM CRC32, words


def weights_hash(ckpt: LoadedModel) -> bytes:
    """16-byte BLAKE2b of the model's weights (names, shapes and bytes, in name order)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(ckpt.model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


def environment(threads: int, engine: str = "torch") -> dict[str, str]:
    """What must match between encoder and decoder for bit-identical network outputs. ``engine``
    "onnx" (the network under ONNX Runtime) adds its version; PyTorch files carry no engine key, as
    they always did."""
    env = {
        "upscale-audio": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "constriction": importlib.metadata.version("constriction"),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "threads": str(threads),
    }
    if engine == "onnx":
        env["engine"] = "onnxruntime " + importlib.metadata.version("onnxruntime")
    return env


def coded_engine(env: dict[str, str]) -> str:
    """The engine a file's network ran on: "onnx" or "torch" (``environment``)."""
    return "onnx" if env.get("engine", "").startswith("onnxruntime") else "torch"


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


def check_layout(f: BinaryIO, h: Header, path: Path) -> None:
    """Walk the block headers (no decoding) and refuse a file whose blocks do not add up to the
    header's frames or that has bytes after its end block: damage is found before any model runs."""
    start = f.tell()
    size = os.fstat(f.fileno()).st_size
    frames, pos = 0, start
    while True:
        raw = f.read(BLOCK.size)
        if len(raw) < BLOCK.size:
            raise UserError(f"{path}: truncated after {frames} of {h.frames} frames; the file is incomplete")
        n, _, _, n_words = BLOCK.unpack(raw)
        pos += BLOCK.size + 4 * n_words
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


