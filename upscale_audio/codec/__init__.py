"""Lossless codec: ``.uad`` files coded with the Upscale ARDM and rANS.

``format`` (the container), ``coder`` (a block through the reveal walk and ANS), ``files`` (whole
files: compress, decode, verify).
"""

from .coder import coded_stages, decode_block, deterministic, encode_block
from .files import (
    PRESETS,
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

__all__ = ["PRESETS", "CodecStats", "DEFAULT_BLOCK_FRAMES", "DEFAULT_CHUNK", "FORMAT_VERSION", "Header", "MAGIC",
           "SUBTYPES", "SUFFIX", "calls_per_file", "coded_stages", "compress_file", "compress_path", "decode_block",
           "decompress_file", "decompress_path", "deterministic", "encode_block", "environment", "iter_decode",
           "open_uad", "quantised_policy", "resolve_engine", "verify", "weights_hash"]
