"""Exact chunked evaluation of the network over long inputs (docs/DESIGN.md §4).

The backbone is a non-causal conv stack with a finite receptive field, so an output sample depends
only on inputs within ``halo = receptive_field // 2`` of it. Each chunk is evaluated on a window
that carries the halo on both sides (clipped at the file edges, where the window then behaves like
the whole file does) and only its core is kept::

    file  |0 ............................................................. T|
    chunk       [halo|######## core ########|halo]
    next                              [halo|######## core ########|halo]

Consecutive windows of equal length are batched together; windows are consumed in order (or in
reverse order), so a coder that depends on the order of its symbols sees the same order every time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from . import ardm
from .errors import UserError
from .model import Trunk, UpscaleWaveNet


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; under torchrun (LOCAL_RANK) one GPU per rank.
    Raises UserError for an unavailable choice."""
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {name!r}: choose auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    if "LOCAL_RANK" in os.environ:
        return torch.device(f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}")
    return torch.device("cuda")


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
    """Batches of consecutive windows of equal length (equal lengths keep chunking exact), in order."""
    group: list[Window] = []
    for w in ws:
        if group and (len(group) == max_batch or w.stop - w.start != group[0].stop - group[0].start):
            yield group
            group = []
        group.append(w)
    if group:
        yield group


class ChunkedRunner:
    """Runs a model over long sequences in chunks. ``chunk``: core samples per window."""

    def __init__(self, model: UpscaleWaveNet, device: torch.device, chunk: int = 16000, max_batch: int | None = None,
                 trunk: Trunk | None = None):
        self.model = model.eval().to(device)
        self.trunk = trunk  # None: the model's own (PyTorch); else e.g. an engine.OnnxTrunk
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
            return self.model(v, r, st, tf, lo, hi, trunk=self.trunk).float()

    def map_chunks(
        self,
        T: int,
        rows: int,
        build: Callable[[Window], tuple[np.ndarray, np.ndarray] | None],
        stage: int | np.ndarray,
        t_frac: float | np.ndarray,
        consume: Callable[[Window, torch.Tensor], None],
        iv: tuple[np.ndarray, np.ndarray] | None = None,
        reverse: bool = False,
    ) -> None:
        """For each window: ``build`` gives (value, revealed) over the window (or None to skip it);
        the model runs on batches of windows and ``consume`` gets the core logits [T_core, W].
        ``stage`` and ``t_frac`` are per row ([rows]) or one value for all rows; ``iv`` the known
        intervals (lo, hi) int [rows, T] (None: nothing known). Windows are consumed in order, rows
        outermost (``reverse``: the opposite order)."""
        stage_r = np.broadcast_to(np.asarray(stage), (rows,))
        tf_r = np.broadcast_to(np.asarray(t_frac, dtype=np.float64), (rows,))
        todo = []
        ws = windows(T, rows, self.chunk, self.halo)
        for w in (reversed(ws) if reverse else ws):
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
        """A chunked ``ce_fn`` for ``ardm.elbo_draw`` (tensors on the CPU)."""

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


def default_chunk(rate: int, device: torch.device) -> int:
    """Core chunk length: 16000 samples on CPU (activations stay in cache: measured fastest among
    4000..64000), ~20 s of audio on GPU (a few hundred MB of activations)."""
    return int(math.ceil(20.0 * max(rate, 8000))) if device.type == "cuda" else 16000


def default_batch(device: torch.device) -> int:
    """Windows per network call: one on CPU (cache), eight on GPU."""
    return 8 if device.type == "cuda" else 1
