"""Exact chunked evaluation of the network over long inputs, and the generation loop.

The backbone is a non-causal conv stack with a finite receptive field, so an output sample depends
only on inputs within ``halo = receptive_field // 2`` of it. Each chunk is evaluated on a window
that carries the halo on both sides (clipped at the file edges, where the window then behaves like
the whole file does) and only its core is kept::

    file  |0 ............................................................. T|
    chunk       [halo|######## core ########|halo]
    next                              [halo|######## core ########|halo]

Generation runs steps outermost and chunks innermost: every network call of a stage sees the state
of the whole file after the previous call. Orders and digit draws are keyed by absolute sample
index (``ardm.order_keys``), so a seed gives the same output whatever the chunk size.
Windows of equal length are batched together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from . import ardm, bits
from .model import UpscaleWaveNet

Progress = Callable[[int], None]


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu. Raises ValueError for an unavailable choice."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


@dataclass
class Window:
    row: int  # which row (file channel) of the batch
    start: int  # window start (with halo)
    stop: int  # window end (with halo)
    core_start: int
    core_stop: int


def windows(T: int, rows: int, chunk: int, halo: int) -> list[Window]:
    """Chunk windows over ``rows`` sequences of length T."""
    out = []
    for r in range(rows):
        for a in range(0, T, chunk):
            b = min(a + chunk, T)
            out.append(Window(r, max(0, a - halo), min(T, b + halo), a, b))
    return out


def batches(ws: list[Window], max_batch: int) -> Iterator[list[Window]]:
    """Group windows of equal length into batches (equal lengths keep chunking exact)."""
    by_len: dict[int, list[Window]] = {}
    for w in ws:
        by_len.setdefault(w.stop - w.start, []).append(w)
    for group in by_len.values():
        for i in range(0, len(group), max_batch):
            yield group[i : i + max_batch]


class ChunkedRunner:
    """Runs a model over long sequences in chunks. ``chunk``: core samples per window."""

    def __init__(self, model: UpscaleWaveNet, device: torch.device, chunk: int = 16000, max_batch: int | None = None):
        self.model = model.eval().to(device)
        self.device = device
        self.halo = model.receptive_field() // 2
        self.chunk = max(1, int(chunk))
        self.max_batch = max_batch or default_batch(device)
        self.autocast = device.type == "cuda"

    def logits(self, value: np.ndarray, revealed: np.ndarray, stage: np.ndarray, t_frac: np.ndarray) -> torch.Tensor:
        """Network logits of a batch of windows: value int [B, T], revealed bool [B, T], stage [B],
        t_frac [B] -> float32 [B, T, W]."""
        v = torch.from_numpy(value).to(self.device)
        r = torch.from_numpy(revealed.astype(np.float32)).to(self.device)
        st = torch.from_numpy(np.asarray(stage, dtype=np.int64)).to(self.device)
        tf = torch.from_numpy(np.asarray(t_frac, dtype=np.float32)).to(self.device)
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            return self.model(v, r, st, tf).float()

    def map_chunks(
        self,
        T: int,
        rows: int,
        build: Callable[[Window], tuple[np.ndarray, np.ndarray] | None],
        stage: int | np.ndarray,
        t_frac: float | np.ndarray,
        consume: Callable[[Window, torch.Tensor], None],
    ) -> None:
        """For each window: ``build`` gives (value, revealed) over the window (or None to skip it);
        the model runs on batches of windows and ``consume`` gets the core logits [T_core, W].
        ``stage`` and ``t_frac`` are per row ([rows]) or one value for all rows."""
        stage_r = np.broadcast_to(np.asarray(stage), (rows,))
        tf_r = np.broadcast_to(np.asarray(t_frac, dtype=np.float64), (rows,))
        todo = []
        for w in windows(T, rows, self.chunk, self.halo):
            built = build(w)
            if built is not None:
                todo.append((w, built))
        lookup = {id(w): b for w, b in todo}
        for group in batches([w for w, _ in todo], self.max_batch):
            value = np.stack([lookup[id(w)][0] for w in group])
            revealed = np.stack([lookup[id(w)][1] for w in group])
            rws = [w.row for w in group]
            logits = self.logits(value, revealed, stage_r[rws], tf_r[rws])
            for i, w in enumerate(group):
                a = w.core_start - w.start
                consume(w, logits[i, a : a + (w.core_stop - w.core_start)])

    def ce_fn(self) -> ardm.CeFn:
        """A chunked ``ce_fn`` for ``ardm.elbo_draw`` / ``ardm.policy_bits`` (tensors on the CPU)."""

        def ce_fn(value, revealed, stage, t_frac, lo, hi, target):  # type: ignore[no-untyped-def]
            B, T = value.shape
            out = torch.zeros(B, T)
            v_np, r_np = value.cpu().numpy(), revealed.cpu().numpy()

            def build(w: Window) -> tuple[np.ndarray, np.ndarray]:
                return v_np[w.row, w.start : w.stop], r_np[w.row, w.start : w.stop]

            def consume(w: Window, logits: torch.Tensor) -> None:
                sl = slice(w.core_start, w.core_stop)
                lp = ardm.masked_log_probs(logits[None], lo[w.row, sl][None].to(logits.device),
                                           hi[w.row, sl][None].to(logits.device))
                out[w.row, sl] = ardm.ce_bits(lp, target[w.row, sl][None].to(logits.device))[0].cpu()

            self.map_chunks(T, B, build, stage.cpu().numpy(), t_frac.cpu().numpy(), consume)
            return out

        return ce_fn


def generate(
    runner: ChunkedRunner,
    u_known: np.ndarray,
    known_bits: int,
    schedule: tuple[int, ...],
    policies: dict[int, np.ndarray] | None,
    row_keys: list[int],
    mode: str = "sample",
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Fill in every bit below ``known_bits``.

    Args:
        u_known: int [B, T] offset-binary samples; bits below ``known_bits`` are ignored.
        policies: stage -> policy fractions [K]; None reveals one position per call ("full").
        row_keys: one random key per row (from the seed, the file and the channel).
        mode: "sample" (ancestral sampling) or "mean" (posterior mean of the first unknown stage,
            bin centre below it; one call).
    Returns: (u int64 [B, T] whose top ``known_bits`` bits equal the input's, network calls made).
    """
    maps = ardm.StageMaps(schedule)
    u = bits.keep_top_bits(u_known, known_bits).astype(np.int64)
    known = u.copy()
    B, T = u.shape
    stages = maps.modelled_stages(known_bits)
    calls = 0
    for s in stages:
        low, width = maps.lows[s], maps.schedule[s]
        hi_shift = low + width
        if mode == "mean":
            _mean_stage(runner, u, known, s, low, hi_shift, known_bits, maps)
            if progress:
                progress(1)
            return u, calls + 1
        if policies is None:  # one position per call: exact ranks of the keyed order
            keys = np.stack([ardm.order_keys(row_keys[r], s, np.arange(T)) for r in range(B)])
            keys = (np.argsort(np.argsort(keys, axis=1), axis=1) + 0.5) / T
            segs = [(i / T, (i + 1) / T) for i in range(T)]
        else:
            keys = None
            segs = ardm.stage_segments(policies[s])
        for a, b in segs:
            _sample_step(runner, u, known, s, low, hi_shift, known_bits, maps, row_keys, keys, a, b)
            calls += 1
            if progress:
                progress(1)
    return u, calls


def _window_keys(row_keys: list[int], keys: np.ndarray | None, s: int, w: Window) -> np.ndarray:
    if keys is not None:
        return keys[w.row, w.start : w.stop]
    return ardm.order_keys(row_keys[w.row], s, np.arange(w.start, w.stop))


def _sample_step(
    runner: ChunkedRunner, u: np.ndarray, known: np.ndarray, s: int, low: int, hi_shift: int,
    known_bits: int, maps: ardm.StageMaps, row_keys: list[int], keys: np.ndarray | None, a: float, b: float,
) -> None:
    """One network call of stage s: reveal the positions whose order key lies in [a, b)."""
    pending: dict[int, np.ndarray] = {}

    def build(w: Window) -> tuple[np.ndarray, np.ndarray] | None:
        k = _window_keys(row_keys, keys, s, w)
        core = k[w.core_start - w.start : w.core_stop - w.start]
        if not ((core >= a) & (core < b)).any():
            return None
        revealed = k < a
        cur = u[w.row, w.start : w.stop]
        value = np.where(revealed, (cur >> low) << low, (cur >> hi_shift) << hi_shift)
        pending[id(w)] = core
        return value, revealed

    def consume(w: Window, logits: torch.Tensor) -> None:
        core = pending.pop(id(w))
        pos = w.core_start + np.flatnonzero((core >= a) & (core < b))  # positions this call reveals
        st = torch.tensor([s])
        lo, hi = maps.allowed_range(torch.from_numpy(known[w.row, pos])[None], st, known_bits)
        sel = torch.from_numpy(pos - w.core_start).to(logits.device)
        lp = ardm.masked_log_probs(logits[sel][None], lo.to(logits.device), hi.to(logits.device))[0]
        unif = ardm.digit_uniforms(row_keys[w.row], s, pos)
        digit = ardm.sample_from(lp.cpu(), torch.from_numpy(unif)).numpy()
        cur = u[w.row, pos]
        u[w.row, pos] = ((cur >> hi_shift) << hi_shift) + (digit << low)

    runner.map_chunks(u.shape[1], u.shape[0], build, s, (s + a) / maps.S, consume)


def _mean_stage(
    runner: ChunkedRunner, u: np.ndarray, known: np.ndarray, s: int, low: int, hi_shift: int,
    known_bits: int, maps: ardm.StageMaps,
) -> None:
    """Posterior mean of stage s from its t = 0 call; bits below the stage at their bin centre."""

    def build(w: Window) -> tuple[np.ndarray, np.ndarray]:
        cur = u[w.row, w.start : w.stop]
        return (cur >> hi_shift) << hi_shift, np.zeros(w.stop - w.start, dtype=bool)

    def consume(w: Window, logits: torch.Tensor) -> None:
        sl = slice(w.core_start, w.core_stop)
        st = torch.tensor([s])
        lo, hi = maps.allowed_range(torch.from_numpy(known[w.row, sl])[None], st, known_bits)
        lp = ardm.masked_log_probs(logits[None], lo.to(logits.device), hi.to(logits.device))[0]
        mean = ardm.expected_digit(lp).cpu().numpy()  # in digit units
        # E[value - x_past] = E[digit] * 2**low + (2**low - 1) / 2 (lower bits at their bin centre)
        off = np.floor(mean * (1 << low) + ((1 << low) - 1) / 2 + 0.5)
        lo_v = lo[0].numpy() << low
        hi_v = (hi[0].numpy() << low) - 1
        base = (u[w.row, sl] >> hi_shift) << hi_shift
        u[w.row, sl] = base + np.clip(off.astype(np.int64), lo_v, hi_v)

    runner.map_chunks(u.shape[1], u.shape[0], build, s, s / maps.S, consume)


def default_chunk(rate: int, device: torch.device) -> int:
    """Core chunk length: 16000 samples on CPU (activations stay in cache: measured fastest among
    4000..64000), ~20 s of audio on GPU (a few hundred MB of activations)."""
    return int(math.ceil(20.0 * max(rate, 8000))) if device.type == "cuda" else 16000


def default_batch(device: torch.device) -> int:
    """Windows per network call: one on CPU (cache), eight on GPU."""
    return 8 if device.type == "cuda" else 1
