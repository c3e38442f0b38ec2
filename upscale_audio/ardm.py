"""The Upscale order-agnostic ARDM: stage geometry, objective, per-step loss tracking, digit draws.

Inference steps (sampling, the posterior mean, exact policy costs, the codec) run through the
reveal walk of ``walk.py``.

Notation (docs/DESIGN.md §1, §4; code name in brackets):

* D       positions in a sequence (time samples of one channel)                [D]
* stage k digit of ``w_k`` bits; ``low_k`` bits lie below it                     [stage]
* sigma   a random order of the D positions; position p is revealed at step sigma(p). We draw
          one uniform key per position; sigma = rank of the key                   [order_key]
* t       number of positions of the stage already revealed, t in {0..D-1}       [t]
* x_past  value with the digits of stage k and below zero; x_future: stage k's digit filled in
* input   revealed ? x_future : x_past, plus the revealed-mask, stage one-hot, global step

Single-draw ELBO of one stage, in bits per sample:  D / (D - t) * sum_unrevealed CE / (D ln 2),
i.e. the mean CE (bits) of the unrevealed positions. With a stage drawn uniformly from the S'
modelled stages the estimator of the total is that times S' (the paper); we draw stages in
proportion to their unknown bits and weight by 1 / p, which is the same for equal widths.

A *network function* ``net(value, revealed, stage, t_frac) -> logits [B, T, W]`` is either the
model itself or a chunked wrapper (``runner.py``); this module never sees files or devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from . import intervals
from .stages import StageMaps

# net(value, revealed, stage, t_frac, iv_lo, iv_hi) -> logits [B, T, W]
NetFn = Callable[..., torch.Tensor]
# ce_fn(value, revealed, stage, t_frac, allowed, target, iv_lo, iv_hi) -> CE bits [B, T], allowed the
# (dlo, dhi, share_lo, share_hi) of ``StageMaps.allowed`` (chunked in scoring.py)
CeFn = Callable[..., torch.Tensor]
LN2 = math.log(2.0)


def top_bits_interval(u: torch.Tensor, known_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The aligned interval of the top ``known_bits`` bits of u: (lo, hi) long, same shape."""
    shift = 16 - int(known_bits)
    lo = (u >> shift) << shift
    return lo, lo + (1 << shift)


def allowed_mask(lo: torch.Tensor, hi: torch.Tensor, W: int) -> torch.Tensor:
    """Which of W digits lie in [lo, hi): lo/hi long [...] -> bool [..., W]."""
    d = torch.arange(W, device=lo.device)
    return (d >= lo[..., None]) & (d < hi[..., None])


def _masked_logits(logits: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, share_lo: torch.Tensor | None,
                   share_hi: torch.Tensor | None) -> torch.Tensor:
    """float32 logits with -inf outside the allowed digits [lo, hi) and the log of its share
    (``StageMaps.edge_shares``) added to each edge digit: [B, T, W]."""
    x = logits.float().masked_fill(~allowed_mask(lo, hi, logits.shape[-1]), float("-inf"))
    if share_lo is not None and share_hi is not None:
        x = x.scatter_add(-1, lo[..., None], torch.log(share_lo.float())[..., None])
        top = torch.where(hi - 1 > lo, torch.log(share_hi.float()), torch.zeros_like(share_hi.float()))
        x = x.scatter_add(-1, (hi - 1)[..., None], top[..., None])
    return x


def _all_whole(lo: torch.Tensor, hi: torch.Tensor, W: int, share_lo: torch.Tensor | None,
               share_hi: torch.Tensor | None) -> bool:
    """Is every digit allowed, and whole (linear PCM of whole stages)?"""
    whole = bool((lo == 0).all()) and bool((hi == W).all())
    if share_lo is not None and share_hi is not None:
        whole = whole and bool((share_lo == 1).all()) and bool((share_hi == 1).all())
    return whole


def masked_log_probs(logits: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, share_lo: torch.Tensor | None = None,
                     share_hi: torch.Tensor | None = None) -> torch.Tensor:
    """The model's log-distribution over the allowed digits [lo, hi) only. logits [B, T, W] -> [B, T, W]
    (float32, -inf outside).

    p(d) is proportional to exp(logit_d) times the share of digit d the known interval allows
    (``share_lo``/``share_hi`` [B, T], of the edge digits; None: whole digits). The logits score
    whole digits: a network that cannot tell how a G.711 bin splits between two high-byte digits
    (its features see the interval at the scale of the stage's range) would otherwise give a sliver
    of a digit the mass of all of it, which pulled the posterior mean towards zero (docs/RESULTS.md
    §19)."""
    if _all_whole(lo, hi, logits.shape[-1], share_lo, share_hi):  # linear PCM: no mask
        return torch.log_softmax(logits.float(), dim=-1)
    return torch.log_softmax(_masked_logits(logits, lo, hi, share_lo, share_hi), dim=-1)


def masked_probs(logits: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, share_lo: torch.Tensor | None = None,
                 share_hi: torch.Tensor | None = None) -> torch.Tensor:
    """The same distribution as ``masked_log_probs``, as probabilities (0 outside the allowed
    digits): logits [B, T, W] -> float32 [B, T, W].

    A call where every digit is allowed and whole (linear PCM of whole stages) skips the mask's
    passes over [B, T, W]: 14 % of a 24-channel network's ONNX call and 7 % of the shipped one's
    (docs/RESULTS.md §17). Both branches give the same probabilities. The ONNX export scripts this
    function (``engine.export_onnx``), which keeps the branch as an If node; a traced graph would
    freeze whichever branch its example took."""
    if _all_whole(lo, hi, logits.shape[-1], share_lo, share_hi):
        return torch.softmax(logits.float(), dim=-1)
    return torch.softmax(_masked_logits(logits, lo, hi, share_lo, share_hi), dim=-1)


def ce_bits(logp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in bits of each target digit. logp [B, T, W], target long [B, T] -> [B, T]."""
    return -logp.gather(-1, target[..., None])[..., 0] / LN2


def ranks(order_key: torch.Tensor) -> torch.Tensor:
    """sigma: the rank of each position's key along time. [B, T] -> long [B, T]."""
    return order_key.argsort(dim=1).argsort(dim=1)


# ---------------------------------------------------------------------------------- training
def draw_intervals(
    u: torch.Tensor, share: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Known intervals for training rows: nothing known, or (a ``share`` of the rows) a random
    linear depth of 4..12 bits, G.711 mu-law or A-law, in equal thirds. u long [B, D] -> (lo, hi)."""
    B, D = u.shape
    lo = torch.zeros_like(u)
    hi = torch.full_like(u, 1 << 16)
    if share <= 0:
        return lo, hi
    pick = torch.rand(B, generator=generator)
    kind = torch.randint(3, (B,), generator=generator)
    depth = torch.randint(4, 13, (B,), generator=generator)
    for r in range(B):
        if float(pick[r]) >= share:
            continue
        row = u[r].cpu().numpy()
        if int(kind[r]) == 0:
            rl, rh = intervals.linear(row, int(depth[r]))
        else:  # the encoder's bins (a partition: the true value is inside)
            rl, rh = intervals.g711_of_u(row, intervals.LAWS[int(kind[r]) - 1])
        lo[r] = torch.from_numpy(rl).to(u.device)
        hi[r] = torch.from_numpy(rh).to(u.device)
    return lo, hi


def training_elbo(
    net: NetFn,
    u: torch.Tensor,
    maps: StageMaps,
    known_bits: int,
    generator: torch.Generator | None = None,
    stage_draw: Sequence[int] = (),
    t_zero_share: float = 0.0,
    interval_share: float = 0.0,
) -> dict[str, torch.Tensor]:
    """One stochastic ELBO draw per row of a batch of crops.

    Args:
        u: long [B, D] offset-binary samples.
        stage_draw: relative draw probability of each modelled stage (empty: proportional to its
            unknown bits, uniform for equal widths as in the paper).
    A stage is drawn per row and weighted by 1 / p(stage), so the estimate stays unbiased; with the
    default draw a uniform model's estimate is exact.
        t_zero_share: share of rows whose t is 0 rather than uniform on {0..D-1}. Not reweighted:
            above 0 the mean of ``elbo`` is a t = 0-weighted objective, no longer an unbiased ELBO.
        interval_share: share of rows conditioned on a random known interval (``draw_intervals``);
            their ``elbo`` is the conditional bits per sample of what the interval leaves open.

    Returns dict with
        ``elbo`` [B]: bits per sample of all modelled stages (unbiased, one stage drawn per row),
        ``ce`` [B]: un-reweighted CE sum / D (the auxiliary term),
        ``stage`` [B], ``t_over_d`` [B] and ``step_loss`` [B] (mean CE bits of the unrevealed
        positions, the per-step loss L_t that the tracker records), ``conditioned`` bool [B].
    """
    B, D = u.shape
    dev = u.device
    stages = maps.modelled_stages(known_bits)
    free = torch.tensor([maps.free_bits(s, known_bits) for s in stages], dtype=torch.float64)
    draw = torch.tensor(stage_draw, dtype=torch.float64) if stage_draw else free
    p = draw / draw.sum()
    pick = torch.multinomial(p, B, replacement=True, generator=generator)
    stage = torch.tensor(stages)[pick].to(dev)
    weight = (1.0 / p[pick]).float().to(dev)
    t = torch.randint(D, (B,), generator=generator, device="cpu")
    if t_zero_share > 0:
        t = torch.where(torch.rand(B, generator=generator) < t_zero_share, 0, t)
    t = t.to(dev)
    key = torch.rand(B, D, generator=generator, device="cpu").to(dev)
    iv_lo, iv_hi = draw_intervals(u, interval_share, generator)
    if known_bits > 0:  # a model of the low bits only: the top bits are always known
        top_lo, top_hi = top_bits_interval(u, known_bits)
        iv_lo, iv_hi = torch.maximum(iv_lo, top_lo), torch.minimum(iv_hi, top_hi)
    revealed = ranks(key) < t[:, None]
    value, target = maps.reveal(u, revealed, stage)
    rev_f = revealed.float()
    logits = net(value, rev_f, stage, maps.t_frac(stage, t / D), iv_lo, iv_hi)
    ce = ce_bits(masked_log_probs(logits, *maps.allowed(u, iv_lo, iv_hi, stage)), target)  # [B, D]
    unrevealed = 1.0 - rev_f
    ce_sum = (ce * unrevealed).sum(1)
    step_loss = ce_sum / (D - t).float()
    return {
        "elbo": step_loss * weight,
        "ce": ce_sum / D,
        "stage": stage,
        "t_over_d": t.float() / D,
        "step_loss": step_loss.detach(),
        "conditioned": (iv_hi - iv_lo < (1 << 16)).any(1),
    }


# ---------------------------------------------------------------------------------- evaluation
def ce_fn_of(net: NetFn) -> CeFn:
    """CE function of a plain network function (whole sequences at once)."""

    def ce_fn(value, revealed, stage, t_frac, allowed, target, iv_lo, iv_hi):  # type: ignore[no-untyped-def]
        return ce_bits(masked_log_probs(net(value, revealed, stage, t_frac, iv_lo, iv_hi), *allowed), target)

    return ce_fn


@torch.no_grad()
def elbo_draw(
    ce_fn: CeFn, u: torch.Tensor, maps: StageMaps, stages: Sequence[int], iv_lo: torch.Tensor,
    iv_hi: torch.Tensor, generator: torch.Generator,
) -> torch.Tensor:
    """One unbiased draw of the bits per sample of each row, summing the given stages.

    Each stage gets its own (t, order). u, iv_lo, iv_hi: long [B, D] (u inside [iv_lo, iv_hi))
    -> float64 [B] (bits per sample).
    """
    B, D = u.shape
    total = torch.zeros(B, dtype=torch.float64)
    for s in stages:
        stage = torch.full((B,), s, dtype=torch.long, device=u.device)
        t = torch.randint(D, (B,), generator=generator).to(u.device)
        key = torch.rand(B, D, generator=generator).to(u.device)
        revealed = ranks(key) < t[:, None]
        value, target = maps.reveal(u, revealed, stage)
        allowed = maps.allowed(u, iv_lo, iv_hi, stage)
        ce = ce_fn(value, revealed.float(), stage, maps.t_frac(stage, t / D), allowed, target, iv_lo, iv_hi)
        total += ((ce * (~revealed)).sum(1) / (D - t)).double().cpu()
    return total
