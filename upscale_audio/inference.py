"""Generation: the choosers of the reveal walk that fill in what the known intervals leave open.

* ``sample``: ancestral sampling, each revealed digit drawn by inverse CDF from keyed uniforms, so a
  seed gives the same output whatever the chunk size (``walk.Orders``).
* ``mean``: per sample, the posterior mean from the t = 0 call of the first stage that leaves it
  open (one call per open stage), bits below that stage at their bin centre.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .runner import ChunkedRunner
from .walk import Call, Orders, Step, Walk, plan

Progress = Callable[[int], None]
MODES = ("sample", "mean")


def sample_from(p: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one digit per position. p [n, W] probabilities (0 for disallowed
    digits), uniform [n] in [0, 1) -> int64 [n]."""
    cdf = np.cumsum(p.astype(np.float64), -1)
    cdf /= cdf[:, -1:]
    idx = (cdf <= np.asarray(uniform, dtype=np.float64)[:, None]).sum(-1)  # searchsorted, right side
    # never land on a zero-probability (disallowed) digit through rounding at the top of the CDF
    top = p.shape[-1] - 1 - np.argmax((p > 0)[:, ::-1], -1)
    return np.minimum(idx, top).astype(np.int64)


def expected_digit(p: np.ndarray) -> np.ndarray:
    """Posterior mean of the digit. p [n, W] probabilities -> float32 [n] (a float32 sum of 2**w terms)."""
    return (p @ np.arange(p.shape[-1], dtype=p.dtype)) / p.sum(-1)


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
        row_keys: one random key per row (``walk.row_keys``).
        mode: "sample" or "mean" (see the module docstring).
    Returns: (u int64 [B, T] with iv_lo <= u < iv_hi, network calls made).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
    lo = np.asarray(iv_lo, dtype=np.int64)
    hi = np.asarray(iv_hi, dtype=np.int64)
    u = lo.copy()  # digits above the first open stage are the interval's (lo and hi - 1 share them)
    T = u.shape[1]
    orders = Orders(row_keys, ranked=T if policies is None else 0)
    walk = Walk(runner, schedule, orders, (lo, hi))
    if mode == "mean":
        return _posterior_mean(walk, u, stages, progress)

    def draw(call: Call) -> np.ndarray:
        unif = orders.uniforms(call.row, call.step.stage, call.pos)
        return sample_from(call.probs(), unif)

    calls = walk.run(u, plan(stages, policies, T), draw, progress=progress)
    return u, calls


def _posterior_mean(walk: Walk, u: np.ndarray, stages: list[int], progress: Progress | None) -> tuple[np.ndarray, int]:
    """Mean mode: one t = 0 call per stage that leaves some sample open.

    E[x] = sum_d p_d E[x | d] over the digits d a stage allows. The first stage that leaves a
    sample open gives p_d, and E[x | d] is taken as the centre of what d allows. The walk then goes
    on with the digit d* the mean lands in as context, so a later stage that leaves the sample
    open again (a G.711 bin that straddles two high bytes) refines E[x | d*] with its own call,
    while the other digits keep their centres::

        mean = rest + weight * E[x | d*],   rest = sum_{d != d*} p_d c_d,   weight = p_d*

    Only a stage whose allowed digits the interval cuts (its edge digits only partly allowed)
    passes its sample on for refining: for linear depths under 8 a second call gained 0.00 to
    0.08 dB and lost 0.06 on music (docs/RESULTS.md §19), so their mean stays one call. The
    estimate is rounded to the nearest value and clipped into the known interval; every sample's
    digit of the stage is set (the local mean's, or the only allowed one) as context for the next
    stage."""
    assert walk.iv is not None
    lo, hi = walk.iv
    maps = walk.maps
    final = u.copy()
    opened = np.zeros(u.shape, dtype=bool)  # some stage left the sample open: final holds its mean
    refine = np.zeros(u.shape, dtype=bool)  # ... and cut its edge digits: the next open stage refines it
    rest = np.zeros(u.shape)  # sum over the digits not taken of p_d times the centre of what d allows
    weight = np.ones(u.shape)  # probability of the digits taken so far
    calls = 0
    for s in stages:
        low, width = maps.lows[s], maps.schedule[s]
        high = low + width
        base = (u >> high) << high
        first, last = np.maximum(lo, base), np.minimum(hi, base + (1 << high)) - 1
        open_here = ((first >> low) != (last >> low)) & (~opened | refine)  # more than one digit allowed
        if not open_here.any():  # the stage's digit is the one the interval allows
            u[:] = base + (((first >> low) & ((1 << width) - 1)) << low)
            continue

        def mean(call: Call, low: int = low, high: int = high, open_here: np.ndarray = open_here) -> np.ndarray:
            r, pos = call.row, call.pos
            prob = call.probs()
            base = (u[r, pos] >> high) << high
            lo_r, hi_r = lo[r, pos], hi[r, pos]

            def centre(d: np.ndarray) -> np.ndarray:  # of what digit d allows, above base
                return (np.maximum(lo_r, base + (d << low)) + np.minimum(hi_r, base + ((d + 1) << low)) - 1) / 2 - base

            # E[value - base] = sum_d p_d c_d: c_d = d 2**low + (2**low - 1) / 2 for a whole digit; the
            # interval's edge digits (G.711 bins do not align with digits) are cut by it, so their
            # centres move (zero shift for aligned, linear intervals)
            m = expected_digit(prob)  # in digit units
            dlo, dhi = call.dlo, call.dhi
            shift = np.zeros(len(pos))
            cuts = [(d, counts * (centre(d) - ((d << low) + ((1 << low) - 1) / 2)))
                    for d, counts in ((dlo, 1.0), (dhi - 1, (dhi - 1 != dlo).astype(np.float64)))]
            cut_rows = np.flatnonzero((cuts[0][1] != 0) | (cuts[1][1] != 0))
            if cut_rows.size:  # probabilities only where an edge digit is cut (never for linear depths)
                pt = prob[cut_rows].astype(np.float64)
                p = pt / pt.sum(-1, keepdims=True)
                for d, cut in cuts:
                    shift[cut_rows] += p[np.arange(cut_rows.size), d[cut_rows]] * cut[cut_rows]
            local = m * (1 << low) + ((1 << low) - 1) / 2 + shift  # E[value - base] at this stage
            in_digits = np.maximum(base + (dlo << low), lo_r), np.minimum(base + (dhi << low), hi_r) - 1
            est = np.clip(base + np.floor(local + 0.5).astype(np.int64), *in_digits)
            digit = (est >> low) & ((1 << (high - low)) - 1)
            here = open_here[r, pos]
            again = np.flatnonzero(here & opened[r, pos])  # refines the digit an earlier stage took
            if again.size:
                pp = pos[again]
                total = rest[r, pp] + weight[r, pp] * (base[again] + local[again])
                est[again] = np.clip(np.floor(total + 0.5).astype(np.int64), lo_r[again], hi_r[again] - 1)
            take = np.flatnonzero(here & ((call.share_lo < 1) | (call.share_hi < 1)))
            if take.size:  # what the digit taken leaves for later stages to refine
                pr = prob[take].astype(np.float64)
                p_taken = pr[np.arange(take.size), digit[take]] / pr.sum(-1)
                c_taken = base[take] + centre(digit)[take]
                pp = pos[take]
                rest[r, pp] += weight[r, pp] * (base[take] + local[take] - p_taken * c_taken)
                weight[r, pp] *= p_taken
            final[r, pos] = np.where(here, est, final[r, pos])
            opened[r, pos] |= here
            refine[r, pos[take]] = True
            return digit

        walk.step(u, Step(s, 0.0, 1.0), mean)
        calls += 1
        if progress:
            progress(1)
    return np.where(opened, final, np.clip(u, lo, hi - 1)), calls
