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

from . import ardm
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

    def logits(self, value: np.ndarray, revealed: np.ndarray, stage: np.ndarray, t_frac: np.ndarray,
               iv_lo: np.ndarray | None = None, iv_hi: np.ndarray | None = None) -> torch.Tensor:
        """Network logits of a batch of windows: value int [B, T], revealed bool [B, T], stage [B],
        t_frac [B], known intervals iv_lo/iv_hi int [B, T] (None: nothing known) -> float32 [B, T, W]."""
        v = torch.from_numpy(value).to(self.device)
        r = torch.from_numpy(revealed.astype(np.float32)).to(self.device)
        st = torch.from_numpy(np.asarray(stage, dtype=np.int64)).to(self.device)
        tf = torch.from_numpy(np.asarray(t_frac, dtype=np.float32)).to(self.device)
        lo = torch.from_numpy(iv_lo).to(self.device) if iv_lo is not None else None
        hi = torch.from_numpy(iv_hi).to(self.device) if iv_hi is not None else None
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            return self.model(v, r, st, tf, lo, hi).float()

    def map_chunks(
        self,
        T: int,
        rows: int,
        build: Callable[[Window], tuple[np.ndarray, np.ndarray] | None],
        stage: int | np.ndarray,
        t_frac: float | np.ndarray,
        consume: Callable[[Window, torch.Tensor], None],
        iv: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """For each window: ``build`` gives (value, revealed) over the window (or None to skip it);
        the model runs on batches of windows and ``consume`` gets the core logits [T_core, W].
        ``stage`` and ``t_frac`` are per row ([rows]) or one value for all rows; ``iv`` the known
        intervals (lo, hi) int [rows, T] (None: nothing known)."""
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
            lo = hi = None
            if iv is not None:
                lo = np.stack([iv[0][w.row, w.start : w.stop] for w in group])
                hi = np.stack([iv[1][w.row, w.start : w.stop] for w in group])
            logits = self.logits(value, revealed, stage_r[rws], tf_r[rws], lo, hi)
            for i, w in enumerate(group):
                a = w.core_start - w.start
                consume(w, logits[i, a : a + (w.core_stop - w.core_start)])

    def ce_fn(self) -> ardm.CeFn:
        """A chunked ``ce_fn`` for ``ardm.elbo_draw`` / ``ardm.policy_bits`` (tensors on the CPU)."""

        def ce_fn(value, revealed, stage, t_frac, lo, hi, target, iv_lo, iv_hi):  # type: ignore[no-untyped-def]
            B, T = value.shape
            out = torch.zeros(B, T)
            v_np, r_np = value.cpu().numpy(), revealed.cpu().numpy()
            iv = (iv_lo.cpu().numpy(), iv_hi.cpu().numpy())

            def build(w: Window) -> tuple[np.ndarray, np.ndarray]:
                return v_np[w.row, w.start : w.stop], r_np[w.row, w.start : w.stop]

            def consume(w: Window, logits: torch.Tensor) -> None:
                sl = slice(w.core_start, w.core_stop)
                lp = ardm.masked_log_probs(logits[None], lo[w.row, sl][None].to(logits.device),
                                           hi[w.row, sl][None].to(logits.device))
                out[w.row, sl] = ardm.ce_bits(lp, target[w.row, sl][None].to(logits.device))[0].cpu()

            self.map_chunks(T, B, build, stage.cpu().numpy(), t_frac.cpu().numpy(), consume, iv)
            return out

        return ce_fn


def generate(
    runner: ChunkedRunner,
    iv_lo: np.ndarray,
    iv_hi: np.ndarray,
    schedule: tuple[int, ...],
    stages: list[int],
    policies: dict[int, np.ndarray] | None,
    row_keys: list[int],
    mode: str = "sample",
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Fill in every sample inside its known interval.

    Args:
        iv_lo, iv_hi: int [B, T], each sample's known interval [lo, hi) (offset binary).
        stages: the stages the intervals leave open (``StageMaps.open_stages``), in order.
        policies: stage -> policy fractions [K]; None reveals one position per call ("full").
        row_keys: one random key per row (from the seed, the file and the channel).
        mode: "sample" (ancestral sampling) or "mean" (per sample, the posterior mean from the t = 0
            call of the first stage that leaves it open; one call for linear depths).
    Returns: (u int64 [B, T] with iv_lo <= u < iv_hi, network calls made).
    """
    maps = ardm.StageMaps(schedule)
    lo = np.asarray(iv_lo, dtype=np.int64)
    hi = np.asarray(iv_hi, dtype=np.int64)
    u = lo.copy()  # digits above the first open stage are the interval's (lo and hi - 1 share them)
    B, T = u.shape
    iv = (lo, hi)
    calls = 0
    done = np.zeros(u.shape, dtype=bool)  # mean mode: samples whose estimate is final
    final = u.copy()
    for s in stages:
        low, width = maps.lows[s], maps.schedule[s]
        hi_shift = low + width
        if mode == "mean":
            base = (u >> hi_shift) << hi_shift
            first, last = np.maximum(lo, base), np.minimum(hi, base + (1 << hi_shift)) - 1
            open_here = ((first >> low) != (last >> low)) & ~done  # more than one digit allowed
            if open_here.any():
                _mean_stage(runner, u, final, done, open_here, iv, s, low, hi_shift, maps)
                calls += 1
                if progress:
                    progress(1)
            else:  # the stage's digit is the one the interval allows
                u[:] = base + (((first >> low) & ((1 << width) - 1)) << low)
            continue
        if policies is None:  # one position per call: exact ranks of the keyed order
            keys = np.stack([ardm.order_keys(row_keys[r], s, np.arange(T)) for r in range(B)])
            keys = (np.argsort(np.argsort(keys, axis=1), axis=1) + 0.5) / T
            segs = [(i / T, (i + 1) / T) for i in range(T)]
        else:
            keys = None
            segs = ardm.stage_segments(policies[s])
        for a, b in segs:
            _sample_step(runner, u, iv, s, low, hi_shift, maps, row_keys, keys, a, b)
            calls += 1
            if progress:
                progress(1)
    if mode == "mean":
        u = np.where(done, final, np.clip(u, lo, hi - 1))
    return u, calls


def _window_keys(row_keys: list[int], keys: np.ndarray | None, s: int, w: Window) -> np.ndarray:
    if keys is not None:
        return keys[w.row, w.start : w.stop]
    return ardm.order_keys(row_keys[w.row], s, np.arange(w.start, w.stop))


def _allowed(maps: ardm.StageMaps, u: np.ndarray, lo: np.ndarray, hi: np.ndarray, s: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Allowed digit range [dlo, dhi) of stage s for 1-D positions (u gives the digits above)."""
    t = [torch.from_numpy(np.ascontiguousarray(x))[None] for x in (u, lo, hi)]
    return maps.allowed_digits(t[0], t[1], t[2], torch.tensor([s]))


def _sample_step(
    runner: ChunkedRunner, u: np.ndarray, iv: tuple[np.ndarray, np.ndarray], s: int, low: int, hi_shift: int,
    maps: ardm.StageMaps, row_keys: list[int], keys: np.ndarray | None, a: float, b: float,
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
        dlo, dhi = _allowed(maps, u[w.row, pos], iv[0][w.row, pos], iv[1][w.row, pos], s)
        sel = torch.from_numpy(pos - w.core_start).to(logits.device)
        lp = ardm.masked_log_probs(logits[sel][None], dlo.to(logits.device), dhi.to(logits.device))[0]
        unif = ardm.digit_uniforms(row_keys[w.row], s, pos)
        digit = ardm.sample_from(lp.cpu(), torch.from_numpy(unif)).numpy()
        cur = u[w.row, pos]
        u[w.row, pos] = ((cur >> hi_shift) << hi_shift) + (digit << low)

    runner.map_chunks(u.shape[1], u.shape[0], build, s, (s + a) / maps.S, consume, iv)


def _mean_stage(
    runner: ChunkedRunner, u: np.ndarray, final: np.ndarray, done: np.ndarray, open_here: np.ndarray,
    iv: tuple[np.ndarray, np.ndarray], s: int, low: int, hi_shift: int, maps: ardm.StageMaps,
) -> None:
    """The t = 0 call of stage s: the posterior mean of the samples it leaves open (``open_here``)
    becomes final (bits below the stage at their centre, clipped into the interval); every sample's
    stage-s digit is set (to the mean's digit, or the only allowed one) for the next stage."""

    def build(w: Window) -> tuple[np.ndarray, np.ndarray]:
        cur = u[w.row, w.start : w.stop]
        return (cur >> hi_shift) << hi_shift, np.zeros(w.stop - w.start, dtype=bool)

    def consume(w: Window, logits: torch.Tensor) -> None:
        sl = slice(w.core_start, w.core_stop)
        lo, hi = iv[0][w.row, sl], iv[1][w.row, sl]
        dlo, dhi = _allowed(maps, u[w.row, sl], lo, hi, s)
        lp = ardm.masked_log_probs(logits[None], dlo.to(logits.device), dhi.to(logits.device))[0]
        mean = ardm.expected_digit(lp).cpu().numpy()  # in digit units
        base = (u[w.row, sl] >> hi_shift) << hi_shift
        # E[value - x_past] = E[digit] * 2**low + (2**low - 1) / 2 (lower bits at their bin centre)
        off = np.floor(mean * (1 << low) + ((1 << low) - 1) / 2 + 0.5).astype(np.int64)
        lo_v = np.maximum(base + (dlo[0].numpy() << low), lo)
        hi_v = np.minimum(base + (dhi[0].numpy() << low), hi) - 1
        est = np.clip(base + off, lo_v, hi_v)
        here = open_here[w.row, sl]
        final[w.row, sl] = np.where(here, est, final[w.row, sl])
        done[w.row, sl] |= here
        u[w.row, sl] = base + (((est >> low) & ((1 << (hi_shift - low)) - 1)) << low)

    runner.map_chunks(u.shape[1], u.shape[0], build, s, s / maps.S, consume, iv)


def default_chunk(rate: int, device: torch.device) -> int:
    """Core chunk length: 16000 samples on CPU (activations stay in cache: measured fastest among
    4000..64000), ~20 s of audio on GPU (a few hundred MB of activations)."""
    return int(math.ceil(20.0 * max(rate, 8000))) if device.type == "cuda" else 16000


def default_batch(device: torch.device) -> int:
    """Windows per network call: one on CPU (cache), eight on GPU."""
    return 8 if device.type == "cuda" else 1
