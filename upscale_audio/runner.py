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
This module is numpy only: the network behind it (``engine.py``) may be PyTorch or ONNX Runtime.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

# What computes a network call: (value int64 [B, T], revealed bool [B, T], stage int64 [B],
# t_frac float32 [B], iv_lo int64 [B, T] | None, iv_hi int64 [B, T] | None) -> float32 [B, T, W]:
# logits, or (a net whose ``gives`` is "probs") the probabilities over each position's allowed digits
Net = Callable[..., np.ndarray]


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
    """Runs a network over long sequences in chunks. ``net``: what computes a call's logits
    (``engine.TorchNet`` or ``engine.OnnxNet``); ``halo``: half its receptive field; ``chunk``:
    core samples per window; ``max_batch``: windows per network call."""

    def __init__(self, net: Net, halo: int, chunk: int = 16000, max_batch: int = 1):
        self.net = net
        self.halo = int(halo)
        self.chunk = max(1, int(chunk))
        self.max_batch = max(1, int(max_batch))

    def map_chunks(
        self,
        T: int,
        rows: int,
        build: Callable[[Window], tuple[np.ndarray, np.ndarray] | None],
        stage: int | np.ndarray,
        t_frac: float | np.ndarray,
        consume: Callable[[Window, np.ndarray], None],
        iv: tuple[np.ndarray, np.ndarray] | None = None,
        reverse: bool = False,
    ) -> None:
        """For each window: ``build`` gives (value, revealed) over the window (or None to skip it);
        the network runs on batches of windows and ``consume`` gets the net's output over the core,
        float32 [T_core, W] (logits, or probabilities: ``Net``). ``stage`` and ``t_frac`` are per
        row ([rows]) or one value for all rows; ``iv`` the known intervals (lo, hi) int [rows, T]
        (None: nothing known). Windows are consumed in order, rows outermost (``reverse``: the
        opposite order)."""
        stage_r = np.broadcast_to(np.asarray(stage, dtype=np.int64), (rows,))
        tf_r = np.broadcast_to(np.asarray(t_frac, dtype=np.float64), (rows,))
        todo = []
        ws = windows(T, rows, self.chunk, self.halo)
        for w in (reversed(ws) if reverse else ws):
            built = build(w)
            if built is not None:
                todo.append((w, built))
        lookup = {id(w): b for w, b in todo}

        def call_args(group: list[Window]) -> tuple[np.ndarray | None, ...]:
            value = np.stack([lookup[id(w)][0] for w in group]).astype(np.int64, copy=False)
            revealed = np.stack([lookup[id(w)][1] for w in group]).astype(bool, copy=False)
            rws = [w.row for w in group]
            lo = hi = None
            if iv is not None:
                lo = np.stack([iv[0][w.row, w.start : w.stop] for w in group]).astype(np.int64, copy=False)
                hi = np.stack([iv[1][w.row, w.start : w.stop] for w in group]).astype(np.int64, copy=False)
            return value, revealed, stage_r[rws], tf_r[rws].astype(np.float32), lo, hi

        groups = list(batches([w for w, _ in todo], self.max_batch))
        for group, out in zip(groups, self._outputs(call_args(g) for g in groups)):
            for i, w in enumerate(group):
                a = w.core_start - w.start
                consume(w, out[i, a : a + (w.core_stop - w.core_start)])

    def _outputs(self, calls: Iterator[tuple[np.ndarray | None, ...]]) -> Iterator[np.ndarray]:
        """The net's output of each call, in order. A net with ``lanes`` > 1 (``engine.OnnxNet``)
        computes that many calls at once in worker threads; the caller consumes each output in
        order on its own thread, and no more than ``lanes`` outputs wait in memory."""
        lanes = int(getattr(self.net, "lanes", 1))
        if lanes <= 1:
            for args in calls:
                yield self.net(*args)
            return
        with ThreadPoolExecutor(lanes) as pool:
            pending: deque[Future[np.ndarray]] = deque()
            for args in calls:
                pending.append(pool.submit(self.net, *args))
                if len(pending) == lanes:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def default_chunk(rate: int, gpu: bool = False, engine: str = "torch") -> int:
    """Core chunk length: ~20 s of audio on GPU (a few hundred MB of activations); on CPU 48 000
    samples under ONNX Runtime (its call costs more outside the convs: 16 % faster than 16 000 on a
    whole minute, docs/RESULTS.md §15), 16 000 under PyTorch (fastest of 4000..64000, §13)."""
    if gpu:
        return int(math.ceil(20.0 * max(rate, 8000)))
    return 48000 if engine == "onnx" else 16000
