"""Per-stage bit geometry of a schedule: the one owner of what a stage's digit is (docs/DESIGN.md §1).

A schedule splits the 16 bits into stages, most significant first; stage k's digit has ``w_k``
bits with ``low_k`` bits below it. The methods take numpy arrays (the reveal walk of inference) or
torch tensors (training), and return the same kind: they use only operators and functions both
share, and never import torch, so an ONNX Runtime restore starts without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import bits

Array = Any  # np.ndarray or torch.Tensor of integers (long)


def _per_row(values: Sequence[int], stage: Array, like: Array) -> Array:
    """values[stage] as a column [B, 1], of like's kind (and device)."""
    if isinstance(like, np.ndarray):
        return np.asarray(values, dtype=np.int64)[np.asarray(stage)][:, None]
    import torch

    return torch.tensor(values, device=like.device)[stage][:, None]


def _xp(a: Array) -> Any:
    """The array library of ``a``: numpy or torch (both have where, maximum, minimum)."""
    if isinstance(a, np.ndarray):
        return np
    import torch

    return torch


class StageMaps:
    """Per-stage bit geometry of a schedule."""

    def __init__(self, schedule: Sequence[int]):
        self.schedule = tuple(int(w) for w in bits.check_schedule(schedule))
        self.S = len(self.schedule)
        self.lows = [int(v) for v in bits.stage_lows(self.schedule)]

    def modelled_stages(self, known_bits: int) -> list[int]:
        """Stages not fully determined by the top ``known_bits`` bits."""
        return list(range(bits.stage_of_bit(self.schedule, known_bits), self.S))

    def free_bits(self, stage: int, known_bits: int) -> int:
        """Bits of a stage not fixed by the top ``known_bits`` bits."""
        top = 16 - self.lows[stage]  # bits known once this stage is done
        return min(self.schedule[stage], max(top - known_bits, 0))

    def digit(self, u: np.ndarray, stage: int) -> np.ndarray:
        """The digit of one stage of every sample. u: int [...] -> int64 [...]."""
        return (np.asarray(u, dtype=np.int64) >> self.lows[stage]) & ((1 << self.schedule[stage]) - 1)

    def set_digit(self, u: np.ndarray, stage: int, digit: np.ndarray) -> np.ndarray:
        """u with the stage's digit replaced by ``digit`` and the bits below it cleared (int64 [...])."""
        low, high = self.lows[stage], self.lows[stage] + self.schedule[stage]
        return ((np.asarray(u, dtype=np.int64) >> high) << high) + (np.asarray(digit, dtype=np.int64) << low)

    def t_frac(self, stage: Array, t_over_d: Array) -> Array:
        """Global step as a fraction of all steps: (stage + t / D) / S (float)."""
        return (stage + t_over_d) / self.S

    def split(self, u: Array, stage: Array) -> tuple[Array, Array, Array]:
        """(x_past, x_future, target) of each row's stage. u: long [B, T], stage: long [B]."""
        low, width = _per_row(self.lows, stage, u), _per_row(self.schedule, stage, u)
        past = (u >> (low + width)) << (low + width)
        future = (u >> low) << low
        return past, future, (u >> low) & ((1 << width) - 1)

    def reveal(self, u: Array, revealed: Array, stage: Array) -> tuple[Array, Array]:
        """What the network sees at a step, and the digits it predicts: (value, target), long [B, T].

        value = x_future (the stage's digit filled in) where ``revealed`` (bool [B, T]), x_past
        elsewhere; the one definition of a step's input (training, the ELBO, the reveal walk)."""
        past, future, target = self.split(u, stage)
        return _xp(u).where(revealed, future, past), target

    def allowed_digits(self, u: Array, iv_lo: Array, iv_hi: Array, stage: Array) -> tuple[Array, Array]:
        """Digits of each row's stage whose values meet the known interval [iv_lo, iv_hi), given the
        digits above the stage (taken from u): [dlo, dhi) per position, long [B, T] each.

        Digit d stands for [past + d 2**low, past + (d + 1) 2**low); the allowed ones are contiguous.
        """
        xp = _xp(u)
        low, width = _per_row(self.lows, stage, u), _per_row(self.schedule, stage, u)
        past = (u >> (low + width)) << (low + width)
        # shifts of non-negative numbers only: an ONNX export turns >> into a division, which
        # truncates negatives where >> floors them
        below, above = iv_lo - past, iv_hi - past
        dlo = xp.where(below < 0, 0, below) >> low
        dhi = (xp.where(above < 0, 0, above) + (1 << low) - 1) >> low  # ceil((iv_hi - past) / 2**low)
        return dlo, xp.minimum(dhi, 1 << width)

    def edge_shares(self, u: Array, iv_lo: Array, iv_hi: Array, stage: Array, dlo: Array,
                    dhi: Array) -> tuple[Array, Array]:
        """The share of the lowest and of the highest allowed digit ([dlo, dhi) of
        ``allowed_digits``) whose values lie inside the known interval: float [B, T] each, in
        (0, 1]. For linear PCM (intervals aligned with the digits) they are 1 wherever more than one
        digit is allowed (a lone allowed digit has probability 1 whatever its share).

        A G.711 bin does not align with the digits, so it cuts its edge digits: a bin of 126 values
        that straddles a multiple of 256 keeps, say, 10 values of one high-byte digit and 116 of the
        next. The model's distribution weighs each allowed digit by this share (``ardm.masked_log_probs``)."""
        xp = _xp(u)
        low, width = _per_row(self.lows, stage, u), _per_row(self.schedule, stage, u)
        past = (u >> (low + width)) << (low + width)
        step = 1 << low

        def share(d: Array) -> Array:
            first = past + (d << low)
            return (xp.minimum(iv_hi, first + step) - xp.maximum(iv_lo, first)) / step

        return share(dlo), share(dhi - 1)

    def allowed(self, u: Array, iv_lo: Array, iv_hi: Array, stage: Array) -> tuple[Array, Array, Array, Array]:
        """What a stage's distribution is taken over: (dlo, dhi, share_lo, share_hi), the allowed
        digits and the shares of the edge ones (``allowed_digits``, ``edge_shares``)."""
        dlo, dhi = self.allowed_digits(u, iv_lo, iv_hi, stage)
        return (dlo, dhi, *self.edge_shares(u, iv_lo, iv_hi, stage, dlo, dhi))

    def open_stages(self, iv_lo: Array, iv_hi: Array, stages: Sequence[int]) -> list[int]:
        """The stages of ``stages`` that some sample's interval leaves undetermined (more than one
        allowed digit), from the first such stage on."""
        first = next((s for s in stages if bool(((iv_lo >> self.lows[s]) != ((iv_hi - 1) >> self.lows[s])).any())),
                     None)
        return [] if first is None else [s for s in stages if s >= first]
