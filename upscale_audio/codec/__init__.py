"""Lossless codec: ``.uad`` files coded with the Upscale ARDM and rANS.

``format`` (the container), ``coder`` (a block through the reveal walk and ANS), ``files`` (whole
files: compress, decode, verify), ``presets``. Names load on first use, so ``codec.PRESETS`` does
not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .presets import PRESETS

if TYPE_CHECKING:
    from .coder import coded_stages, decode_block, deterministic, encode_block
    from .files import (
        CodecStats,
        calls_per_file,
        compress_file,
        compress_path,
        decompress_file,
        decompress_path,
        iter_decode,
        open_uad,
        quantised_policy,
        resolve_engine,
        verify,
    )
    from .format import (
        DEFAULT_BLOCK_FRAMES,
        DEFAULT_CHUNK,
        FORMAT_VERSION,
        MAGIC,
        SUBTYPES,
        SUFFIX,
        Header,
        environment,
        weights_hash,
    )

_WHERE = {
    **dict.fromkeys(("coded_stages", "decode_block", "deterministic", "encode_block"), "coder"),
    **dict.fromkeys(("CodecStats", "calls_per_file", "compress_file", "compress_path", "decompress_file",
                     "decompress_path", "iter_decode", "open_uad", "quantised_policy", "resolve_engine", "verify"),
                    "files"),
    **dict.fromkeys(("DEFAULT_BLOCK_FRAMES", "DEFAULT_CHUNK", "FORMAT_VERSION", "MAGIC", "SUBTYPES", "SUFFIX",
                     "Header", "environment", "weights_hash"), "format"),
}

__all__ = ["DEFAULT_BLOCK_FRAMES", "DEFAULT_CHUNK", "FORMAT_VERSION", "MAGIC", "PRESETS", "SUBTYPES", "SUFFIX",
           "CodecStats", "Header", "calls_per_file", "coded_stages", "compress_file", "compress_path", "decode_block",
           "decompress_file", "decompress_path", "deterministic", "encode_block", "environment", "iter_decode",
           "open_uad", "quantised_policy", "resolve_engine", "verify", "weights_hash"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
