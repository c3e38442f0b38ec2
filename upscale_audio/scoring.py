"""Scoring recordings: bits per sample under the model (``bpd``), stochastic or exact.

``steps="full"``: the stochastic ELBO (``ardm.elbo_draw``) averaged over passes, with a standard
error. ``steps=K``: the exact code length of the K-call policy, through the reveal walk with the
codec's orders and stored policy, so it equals what ``compress`` pays before the coder's rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import ardm, audio, intervals, policy
from .checkpoint import LoadedModel
from .engine import TorchNet
from .enhance import open_stages
from .errors import UserError
from .runner import ChunkedRunner, Window, default_chunk
from .walk import Call, Orders, Walk, plan, row_keys


def read_recordings(paths: list[Path]) -> list[np.ndarray]:
    """The offset-binary samples (int64 [C, T] each) of 16-bit recordings; UserError otherwise."""
    out = []
    for src, _ in audio.find_audio(paths):
        a = audio.read(src)
        if a.samples is None or a.significant_bits < 16:
            raise UserError(f"{src}: has {a.significant_bits} significant bits; bpd scores 16-bit recordings")
        out.append(a.u)
    return out


@dataclass
class BpdResult:
    bits_per_sample: float
    stderr: float
    samples: int
    files: int
    passes: int
    steps: str
    given_bits: int


def bits_per_sample(
    items: list[np.ndarray],
    ckpt: LoadedModel,
    *,
    given_bits: int | None = None,
    given_law: str | None = None,
    steps: int | str = "full",
    passes: int = 4,
    seed: int = 0,
    device: Any = "cpu",
    chunk: int | None = None,
    naive: bool = False,
) -> BpdResult:
    """Bits per sample of a set of recordings (u int [C, T] each) under the model.

    ``steps="full"``: the stochastic ELBO averaged over ``passes`` draws of (t, order); the
    standard error is over passes. ``steps=K``: the exact code length of the K-call policy for a
    fixed order drawn from ``seed`` (deterministic, stderr 0). ``given_law`` (ulaw/alaw): score what
    G.711 coding of each sample leaves open instead of the bits below ``given_bits``.
    """
    gb = ckpt.known_bits if given_bits is None else given_bits
    if gb < ckpt.known_bits:
        raise ValueError(f"the model covers only the bits below {ckpt.known_bits}; use --given-bits {ckpt.known_bits} "
                         "or more")

    def known(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        lo, hi = intervals.g711_of_u(x, given_law) if given_law else intervals.linear(x, gb)
        return torch.from_numpy(lo), torch.from_numpy(hi), open_stages(ckpt, lo, hi)

    gpu = str(device).startswith("cuda")
    runner = ChunkedRunner(TorchNet(ckpt.model, device or "cpu"), ckpt.halo, chunk or default_chunk(16000, gpu),
                           max_batch=8 if gpu else 1)
    ce_fn = chunked_ce_fn(runner)
    maps = ckpt.maps
    total_samples = sum(int(np.asarray(x).size) for x in items)
    g = torch.Generator().manual_seed(seed)
    if steps == "full":
        per_pass = []
        for _ in range(passes):
            tot = 0.0
            for x in items:
                u = torch.from_numpy(np.asarray(x, dtype=np.int64))
                lo, hi, stages = known(u.numpy())
                tot += float(ardm.elbo_draw(ce_fn, u, maps, stages, lo, hi, g).sum()) * u.shape[1]
            per_pass.append(tot / total_samples)
        arr = np.array(per_pass)
        se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
        return BpdResult(float(arr.mean()), se, total_samples, len(items), passes, "full", gb)
    return BpdResult(policy_bits(items, ckpt, known, int(steps), naive, seed, runner) / total_samples, 0.0,
                     total_samples, len(items), 1, str(steps), gb)


def chunked_ce_fn(runner: ChunkedRunner) -> ardm.CeFn:
    """A chunked ``ce_fn`` for ``ardm.elbo_draw``: the network in windows (tensors on the CPU)."""

    def ce_fn(value, revealed, stage, t_frac, allowed, target, iv_lo, iv_hi):  # type: ignore[no-untyped-def]
        B, T = value.shape
        out = torch.zeros(B, T)
        v_np, r_np = value.cpu().numpy(), revealed.cpu().numpy() > 0.5
        iv = (iv_lo.cpu().numpy(), iv_hi.cpu().numpy())

        def build(w: Window) -> tuple[np.ndarray, np.ndarray]:
            return v_np[w.row, w.start : w.stop], r_np[w.row, w.start : w.stop]

        def consume(w: Window, logits: np.ndarray) -> None:
            sl = slice(w.core_start, w.core_stop)
            lp = ardm.masked_log_probs(torch.from_numpy(logits)[None], *(a[w.row, sl][None].cpu() for a in allowed))
            out[w.row, sl] = ardm.ce_bits(lp, target[w.row, sl][None].cpu())[0]

        runner.map_chunks(T, B, build, stage.cpu().numpy(), t_frac.cpu().numpy(), consume, iv)
        return out

    return ce_fn


def policy_bits(items: list[np.ndarray], ckpt: LoadedModel,
                known: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor, list[int]]],
                steps: int, naive: bool, seed: int, runner: ChunkedRunner) -> float:
    """Exact code length in bits of ``items`` (u int [C, T] each) under the K-call policy, as stored
    in a .uad header, and the codec's orders: the walk the codec's encoder runs, without the coder."""
    pol = {s: policy.dequantise(policy.quantise(p)) for s, p in ckpt.policies(steps, naive).items()}
    total = 0.0
    for x in items:
        u = np.array(x, dtype=np.int64)
        lo, hi, stages = known(u)
        walk = Walk(runner, ckpt.config.ardm.schedule, Orders(row_keys((seed,), u.shape[0])), (lo.numpy(), hi.numpy()))

        def score(call: Call, u: np.ndarray = u, walk: Walk = walk) -> None:
            nonlocal total
            total += call.bits(walk.maps.digit(u[call.row, call.pos], call.step.stage))

        walk.run(u, plan(stages, pol), score)
    return total
