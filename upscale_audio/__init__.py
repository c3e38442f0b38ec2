"""upscale-audio: restore lost bit depth in audio with an Upscale ARDM (Hoogeboom et al., 2022).

Public API::

    from upscale_audio import load_model, enhance_array, bits_per_sample
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "enhance_array", "bits_per_sample"]


def __getattr__(name: str):  # lazy: importing the package must not import torch or compile numba
    if name == "load_model":
        from .checkpoint import load

        return load
    if name in ("enhance_array", "bits_per_sample"):
        from . import enhance

        return getattr(enhance, name)
    raise AttributeError(name)
