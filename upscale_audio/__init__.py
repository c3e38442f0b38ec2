"""upscale-audio: restore lost bit depth in audio with an Upscale ARDM (Hoogeboom et al., 2022).

Public API (``api.py``; int16 arrays [channels, frames])::

    import upscale_audio as ua
    y = ua.restore(x, bits=8, rate=16000)       # or law="ulaw"
    ua.score("orig.wav", given_bits=8).bits_per_sample
    x2, rate = ua.decompress(ua.compress(x, 16000))

Lower level: ``load_model``, ``enhance_array``, ``bits_per_sample``.
"""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["__version__", "restore", "score", "compress", "decompress", "load_model", "enhance_array",
           "bits_per_sample"]


def __getattr__(name: str):  # lazy: importing the package must not import torch or compile numba
    if name == "load_model":
        from .checkpoint import load

        return load
    if name in ("restore", "score", "compress", "decompress"):
        from . import api

        return getattr(api, name)
    if name in ("enhance_array", "bits_per_sample"):
        from . import enhance

        return getattr(enhance, name)
    raise AttributeError(name)
