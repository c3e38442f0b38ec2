"""The reveal walk: the one place an ARDM step is computed at inference time (docs/DESIGN.md §4).

A *step* ``(stage s, [a, b))`` reveals, in every row, the positions of stage s whose order key lies
in [a, b). The network sees each position as ``x_future`` (its stage-s digit filled in) if its key
is below ``a`` (revealed by an earlier step) and as ``x_past`` otherwise, with
``t_frac = (s + a) / S``; the masked log-probabilities of the revealed positions are restricted to
the digits their known interval allows. A *chooser* gets them per window (a :class:`Call`) and
gives back the digits, or ``None`` to leave the values as they are:

* sampling draws them (``inference.py``), the posterior mean takes their expectation,
* the codec's decoder reads them from the ANS stream and its encoder writes them (``codec/``),
* ``bpd --steps K`` adds up their exact cost (``enhance.py``).

Orders are keyed by the one rule of :class:`Orders`, so the ``.uad`` coder and ``bpd --steps K``
share their orders (and costs) by construction, and a seed gives the same output whatever the
chunk size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import bits
from .runner import ChunkedRunner, Window
from .stages import StageMaps

LN2 = math.log(2.0)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Step:
    """One network call: stage ``stage`` reveals the positions whose key lies in [a, b)."""

    stage: int
    a: float
    b: float

    def t_frac(self, n_stages: int) -> float:
        """Global step as a fraction of all steps: (stage + a) / S."""
        return (self.stage + self.a) / n_stages


def segments(fractions: np.ndarray) -> list[tuple[float, float]]:
    """Key intervals [a, b) revealed by each call of a policy (segment starts [K], increasing)."""
    edges = np.append(np.asarray(fractions, dtype=np.float64), 1.0)
    return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def plan(stages: Sequence[int], policies: dict[int, np.ndarray] | None, length: int = 0) -> list[Step]:
    """The steps of a walk over ``stages``: the segments of each stage's policy (fractions [K]), or
    with ``policies=None`` one position per call (``length`` steps per stage, keys ranked exactly:
    see :class:`Orders`)."""
    out = []
    for s in stages:
        if policies is None:
            out += [Step(s, i / length, (i + 1) / length) for i in range(length)]
        else:
            out += [Step(s, a, b) for a, b in segments(policies[s])]
    return out


def row_keys(parts: Sequence[int], rows: int) -> list[int]:
    """One random key per row (channel): ``mix_key(*parts, row)``. parts: the seed and whatever
    else names the sequence (enhance: the file's key; the codec and ``bpd --steps``: the seed)."""
    return [bits.mix_key(*parts, c) for c in range(rows)]


class Orders:
    """The one keying rule of orders and draws: stage s of row r ranks the keys
    ``keyed_uniform(mix_key(row_key, s, 1), frame0 + index)`` (absolute sample index, so chunks and
    blocks do not change them); digit draws use ``mix_key(row_key, s, 2)``. With ``ranked=True`` a
    key is replaced by its exact rank (rank + 0.5) / T along the row, for one position per call."""

    def __init__(self, keys: list[int], frame0: int = 0, ranked: int = 0):
        self.row_keys, self.frame0, self.ranked = keys, frame0, ranked
        self._ranks: dict[tuple[int, int], np.ndarray] = {}

    def keys(self, row: int, stage: int, start: int, stop: int) -> np.ndarray:
        """Order keys in [0, 1) of positions [start, stop) of a row: float64 [stop - start]."""
        if not self.ranked:
            return order_keys(self.row_keys[row], stage, self.frame0 + np.arange(start, stop))
        if (row, stage) not in self._ranks:
            k = order_keys(self.row_keys[row], stage, self.frame0 + np.arange(self.ranked))
            if any(st != stage for _, st in self._ranks):  # keep one stage's rows only
                self._ranks = {}
            self._ranks[(row, stage)] = (np.argsort(np.argsort(k)) + 0.5) / self.ranked
        return self._ranks[(row, stage)][start:stop]

    def uniforms(self, row: int, stage: int, pos: np.ndarray) -> np.ndarray:
        """Uniforms in [0, 1) for inverse-CDF digit draws at positions ``pos``: float64 [n]."""
        return bits.keyed_uniform(bits.mix_key(self.row_keys[row], stage, 2), self.frame0 + np.asarray(pos))


def order_keys(seed_key: int, stage: int, index: np.ndarray) -> np.ndarray:
    """Keys in [0, 1) whose ranks give the random order of a stage (keyed by absolute index)."""
    return bits.keyed_uniform(bits.mix_key(seed_key, stage, 1), index)


def masked_log_softmax(logits: np.ndarray, dlo: np.ndarray, dhi: np.ndarray, dtype: type = np.float32,
                       share_lo: np.ndarray | None = None, share_hi: np.ndarray | None = None) -> np.ndarray:
    """Log-softmax over the allowed digits [dlo, dhi) of each row only, -inf elsewhere, each edge
    digit weighted by its share (float [n], None: whole): logits [n, W], dlo/dhi int [n] -> [n, W] of
    ``dtype`` (the inference twin of ``ardm.masked_log_probs``)."""
    x: np.ndarray = np.asarray(logits, dtype=dtype)
    W = x.shape[-1]
    cut = share_lo is not None and share_hi is not None and not (np.all(share_lo == 1) and np.all(share_hi == 1))
    if cut or not (np.all(dlo == 0) and np.all(dhi == W)):  # every digit allowed and whole (linear PCM): no mask
        d = np.arange(W)
        x = np.where((d >= dlo[:, None]) & (d < dhi[:, None]), x, -np.inf).astype(dtype, copy=False)
    if cut:
        assert share_lo is not None and share_hi is not None
        rows = np.arange(len(x))
        x[rows, dlo] += np.log(np.asarray(share_lo, dtype=dtype))
        x[rows, dhi - 1] += np.where(dhi - 1 > dlo, np.log(np.asarray(share_hi, dtype=dtype)), 0).astype(dtype)
    top = x.max(-1, keepdims=True)
    shifted = x - top
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@dataclass
class Call:
    """What one window of one step reveals, handed to the chooser.

    pos: int64 [n] positions (row indices) revealed; dlo, dhi: int64 [n], the allowed digits
    [dlo, dhi) of each position given its known interval and the digits above the stage; share_lo,
    share_hi: float64 [n], how much of the edge digits the interval allows
    (``StageMaps.edge_shares``); and what the net gave (``runner.Net``): raw logits float32 [n, W]
    (PyTorch), or the probabilities over the allowed digits float32 [n, W] (ONNX Runtime computes
    the masked softmax, shares included, in its graph).
    """

    step: Step
    row: int
    pos: np.ndarray
    logits: np.ndarray | None
    dlo: np.ndarray
    dhi: np.ndarray
    share_lo: np.ndarray
    share_hi: np.ndarray
    given_probs: np.ndarray | None = None
    _lp: np.ndarray | None = field(default=None, repr=False)

    def log_probs(self) -> np.ndarray:
        """Natural log-probabilities over the allowed digits only (float32 [n, W], -inf elsewhere)."""
        if self._lp is None:
            if self.logits is not None:
                self._lp = masked_log_softmax(self.logits, self.dlo, self.dhi, np.float32, self.share_lo,
                                              self.share_hi)
            else:
                assert self.given_probs is not None
                with np.errstate(divide="ignore"):
                    self._lp = np.log(self.given_probs)
        return self._lp

    def probs(self) -> np.ndarray:
        """Probabilities over the allowed digits (float32 [n, W], 0 elsewhere)."""
        return self.given_probs if self.given_probs is not None else np.exp(self.log_probs())

    def log2_probs(self) -> np.ndarray:
        """The same in bits, from a float64 log-softmax of the logits (a float32 probability can
        underflow to 0): what a code length is counted in (``bpd --steps K`` scores with logits);
        from given probabilities, their float64 log2. float64 [n, W]."""
        if self.logits is None:
            assert self.given_probs is not None
            with np.errstate(divide="ignore"):
                return np.log2(self.given_probs.astype(np.float64))
        return masked_log_softmax(self.logits, self.dlo, self.dhi, np.float64, self.share_lo, self.share_hi) / LN2

    def bits(self, digits: np.ndarray) -> float:
        """Exact code length in bits of the given digits (int [n]) under this call."""
        d = np.asarray(digits, dtype=np.int64)
        return -float(np.take_along_axis(self.log2_probs(), d[:, None], 1).sum())


Chooser = Callable[[Call], "np.ndarray | None"]


class Walk:
    """Steps of the ARDM over a batch of rows, one network call (over all windows) per step.

    ``iv``: the known intervals (lo, hi) int64 [rows, T] (None: nothing known, all 16 bits open).
    The values ``u`` int64 [rows, T] hold the digits chosen so far: above a step's stage they are
    final; the step writes the chooser's digits into stage s and clears the bits below it.
    """

    def __init__(self, runner: ChunkedRunner, schedule: Sequence[int], orders: Orders,
                 iv: tuple[np.ndarray, np.ndarray] | None = None):
        self.runner, self.orders, self.iv = runner, orders, iv
        self.maps = StageMaps(schedule)

    def run(self, u: np.ndarray, steps: Sequence[Step], choose: Chooser, *, reverse: bool = False,
            progress: Progress | None = None) -> int:
        """Run ``steps`` in order (``reverse``: last to first, windows too, for an ANS encoder, which
        knows every value). Returns the network calls made."""
        for st in (reversed(steps) if reverse else steps):
            self.step(u, st, choose, reverse=reverse)
            if progress:
                progress(1)
        return len(steps)

    def step(self, u: np.ndarray, st: Step, choose: Chooser, *, reverse: bool = False) -> None:
        """One network call: every window whose core holds a position revealed by ``st``."""
        s = st.stage
        pending: dict[int, np.ndarray] = {}

        everything = st.a <= 0.0 and st.b >= 1.0  # keys lie in [0, 1): no order needed
        gives = getattr(self.runner.net, "gives", "logits")
        stage_r = np.array([s])

        def build(w: Window) -> tuple[np.ndarray, np.ndarray] | None:
            c0 = w.core_start - w.start
            if everything:
                idx, revealed = np.arange(w.core_stop - w.core_start), np.zeros(w.stop - w.start, dtype=bool)
            else:
                key = self.orders.keys(w.row, s, w.start, w.stop)
                core = key[c0 : c0 + w.core_stop - w.core_start]
                idx = np.flatnonzero((core >= st.a) & (core < st.b))
                if not idx.size:
                    return None
                revealed = key < st.a
            pending[id(w)] = idx
            value, _ = self.maps.reveal(u[w.row, w.start : w.stop][None], revealed[None], stage_r)
            return value[0], revealed

        def consume(w: Window, logits: np.ndarray) -> None:
            idx = pending.pop(id(w))
            pos = w.core_start + idx
            allowed = self.allowed(u, w.row, pos, s)
            core = logits if len(idx) == len(logits) else logits[idx]
            call = Call(st, w.row, pos, core, *allowed) if gives == "logits" else \
                Call(st, w.row, pos, None, *allowed, given_probs=core)
            digits = choose(call)
            if digits is not None:
                u[w.row, pos] = self.maps.set_digit(u[w.row, pos], s, digits)

        self.runner.map_chunks(u.shape[1], u.shape[0], build, s, st.t_frac(self.maps.S), consume, self.iv,
                               reverse=reverse)

    def allowed(self, u: np.ndarray, row: int, pos: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                           np.ndarray]:
        """Allowed digits [dlo, dhi) of stage s at positions ``pos`` of a row and the shares of the
        edge ones (``StageMaps.allowed``): int64 [n] x 2, float64 [n] x 2."""
        if self.iv is None:
            n = len(pos)
            return (np.zeros(n, dtype=np.int64), np.full(n, 1 << self.maps.schedule[s], dtype=np.int64),
                    np.ones(n), np.ones(n))
        t = [np.ascontiguousarray(x[row, pos], dtype=np.int64)[None] for x in (u, *self.iv)]
        dlo, dhi, share_lo, share_hi = self.maps.allowed(t[0], t[1], t[2], np.array([s]))
        return dlo[0], dhi[0], share_lo[0], share_hi[0]
