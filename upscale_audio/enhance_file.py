"""Restoring one file, as ``enhance`` does: read it, decide what it knows, restore, check, write.

Imports nothing of the network unless the model is used, and then torch only when the model runs
on PyTorch (``engine.py``), so a restore starts fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import audio, intervals
from .errors import UserError


@dataclass
class RestoreOptions:
    """How ``restore_file`` restores (the CLI's enhance options)."""

    method: str = "ardm"  # ardm, lmmse, bin-centre or zero
    mode: str = "mean"
    steps: int | str | None = None  # calls per stage, "full", or None: the model's
    naive: bool = False
    bits: int | None = None  # known top bits (None: from the format, else detected)
    raw: str | None = None  # headerless G.711 input: ulaw or alaw
    rate: int | None = None  # sample rate of raw input
    seed: int = 0
    chunk_seconds: float | None = None
    force: bool = False
    model: Path | None = None  # None: the bundled model that fits the input (checkpoint.model_for)
    engine: str = "auto"  # what runs the network on CPU: auto, torch or onnx (engine.py)


Bar = Callable[[int, str], Any]  # (total calls, description) -> a context manager with .update(n)


def restore_file(src: Path, dst: Path, opts: RestoreOptions, device: str | None,
                 bar: Bar, warn: Callable[[str], None]) -> str:
    """Restore one file into ``dst`` (written atomically); returns a one-line summary. Raises
    UserError for an input there is nothing to do with or a model that cannot restore it. The model
    is ``opts.model``, else the bundled one that fits what the file knows (loaded once per process)."""
    a = audio.read_g711_raw(src, opts.raw, int(opts.rate or 0)) if opts.raw else audio.read(src)
    if a.samples is None:
        raise UserError(f"{src}: has {a.significant_bits}-bit material; this tool restores up to 16 bits "
                        "(nothing to do)")
    known = audio.decide_known(a, opts.bits, opts.raw)
    if known.kind == "linear" and known.bits >= 16:
        if known.source == "digital silence":
            audio.write(dst, a.samples, a.rate, force=opts.force)
            return f"{src} -> {dst}: digital silence, nothing to restore (copied unchanged)"
        raise UserError(f"{src}: uses all 16 bits, nothing to restore; pass --bits N to treat only the top N bits "
                        "as known")
    lo, hi = known.intervals(a)
    law = None if known.kind == "linear" else known.kind
    if opts.method != "ardm":
        out_u, info = intervals.restore_simple(lo, hi, opts.method, a.rate), opts.method
    else:
        from .classical import replaces_network

        if replaces_network(law, opts.mode, bundled=opts.model is None):
            out_u, info = _restore_classical(lo, hi, a.rate)
        else:
            out_u, info = _restore_with_model(src, a, lo, hi, law, opts, device, bar, warn)
    if not intervals.check_inside(out_u, lo, hi):  # the invariant, checked on every file
        raise RuntimeError(f"{src}: a known value changed; this is a bug, please report it")
    audio.write(dst, (out_u - 32768).astype("int16"), a.rate, force=opts.force)
    return f"{src} -> {dst}: {known.describe()}, {a.channels} ch, {a.rate} Hz; {info}"


def _restore_classical(lo: np.ndarray, hi: np.ndarray, rate: int) -> tuple[np.ndarray, str]:
    """A G.711 posterior mean: the classical estimate (``classical.py``) and its learned correction
    (``correction.py``, where the installation has it); no ARDM network."""
    from .classical import interval_mean
    from .correction import for_rate

    t0 = time.perf_counter()
    corr = for_rate(rate)
    out_u = interval_mean(lo, hi, rate, corr=corr)
    seconds = time.perf_counter() - t0
    what = "lmmse" if corr is None else f"lmmse + correction {corr.path.name if corr.path else ''}"
    return out_u, (f"{what} (a G.711 mean is the classical estimate: the ARDM model adds nothing measurable to it), "
                   f"{seconds:.2f} s, {lo.shape[1] / rate / max(seconds, 1e-9):.1f}x real time")


def _restore_with_model(src: Path, a: audio.AudioFile, lo: np.ndarray, hi: np.ndarray, law: str | None,
                        opts: RestoreOptions, device: str | None, bar: Bar, warn: Callable[[str], None]
                        ) -> tuple[np.ndarray, str]:
    """The network's restore (``opts.model``, else the bundled model that fits): (u int64 [C, T], summary)."""
    from .checkpoint import load_cached, model_for
    from .enhance import SAMPLE_STEPS, enhance_intervals, file_key, open_stages

    ckpt = load_cached(model_for(opts.model, lo, hi, law, opts.mode), engine_for(opts.engine, device))
    assert ckpt.path is not None
    rates = ckpt.config.data.sample_rates
    if rates and a.rate not in rates:
        warn(f"warning: {src}: sample rate {a.rate} Hz was not in the model's training data {list(rates)}; "
             "output may be worse (no resampling is done)")
    chunk = max(1, int(opts.chunk_seconds * a.rate)) if opts.chunk_seconds else None
    per_stage = a.frames if opts.steps == "full" else int(opts.steps or SAMPLE_STEPS)
    try:
        n_stages = len(open_stages(ckpt, lo, hi))
        with bar(n_stages if opts.mode == "mean" else n_stages * per_stage, src.name) as b:
            res = enhance_intervals(lo, hi, ckpt, mode=opts.mode, steps=opts.steps, naive=opts.naive,
                                    key=file_key(opts.seed, src), device=device or "cpu", chunk=chunk, rate=a.rate,
                                    progress=b.update)
    except ValueError as e:
        raise UserError(f"{src}: {e}; use --method bin-centre or a model of all 16 bits") from None
    calls = res.calls // max(res.stages, 1)
    return res.u, (f"model {ckpt.path.name} ({res.engine}), {res.stages} stage(s) x {calls} call(s), "
                   f"{res.seconds:.2f} s, {a.frames / a.rate / max(res.seconds, 1e-9):.1f}x real time")


def engine_for(engine: str, device: str | None) -> str:
    """The engine a model is loaded for: ONNX Runtime runs on CPU only, so a CUDA device takes torch."""
    return engine if device in (None, "cpu") else "torch"
