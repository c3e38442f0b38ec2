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
    """Mean mode: one t = 0 call per stage that leaves some not-yet-final sample open. Its mean
    becomes final for those samples (clipped into what the interval allows); every sample's digit
    of the stage is set (the mean's, or the only allowed one) as context for the next stage."""
    assert walk.iv is not None
    lo, hi = walk.iv
    maps = walk.maps
    final = u.copy()
    done = np.zeros(u.shape, dtype=bool)
    calls = 0
    for s in stages:
        low, width = maps.lows[s], maps.schedule[s]
        high = low + width
        base = (u >> high) << high
        first, last = np.maximum(lo, base), np.minimum(hi, base + (1 << high)) - 1
        open_here = ((first >> low) != (last >> low)) & ~done  # more than one digit allowed
        if not open_here.any():  # the stage's digit is the one the interval allows
            u[:] = base + (((first >> low) & ((1 << width) - 1)) << low)
            continue

        def mean(call: Call, low: int = low, high: int = high, open_here: np.ndarray = open_here) -> np.ndarray:
            r, pos = call.row, call.pos
            prob = call.probs()
            m = expected_digit(prob)  # in digit units
            base = (u[r, pos] >> high) << high
            dlo, dhi = call.dlo, call.dhi
            # E[value - x_past] = sum_d p_d c_d, c_d the centre of what digit d allows: (2**low - 1) / 2
            # above d 2**low for a whole digit; the interval's edge digits (G.711 bins do not align
            # with digits) are cut by it, so their centres move (zero for aligned, linear intervals)
            shift = np.zeros(len(pos))
            cuts = []
            for d, weight in ((dlo, 1.0), (dhi - 1, (dhi - 1 != dlo).astype(np.float64))):
                a = np.maximum(lo[r, pos], base + (d << low))
                b = np.minimum(hi[r, pos], base + ((d + 1) << low))
                cuts.append((d, weight * ((a + b - 1) / 2 - (base + (d << low) + ((1 << low) - 1) / 2))))
            cut_rows = np.flatnonzero((cuts[0][1] != 0) | (cuts[1][1] != 0))
            if cut_rows.size:  # probabilities only where an edge digit is cut (never for linear depths)
                pt = prob[cut_rows].astype(np.float64)
                p = pt / pt.sum(-1, keepdims=True)
                for d, cut in cuts:
                    shift[cut_rows] += p[np.arange(cut_rows.size), d[cut_rows]] * cut[cut_rows]
            off = np.floor(m * (1 << low) + ((1 << low) - 1) / 2 + shift + 0.5).astype(np.int64)
            est = np.clip(base + off, np.maximum(base + (dlo << low), lo[r, pos]),
                          np.minimum(base + (dhi << low), hi[r, pos]) - 1)
            here = open_here[r, pos]
            final[r, pos] = np.where(here, est, final[r, pos])
            done[r, pos] |= here
            return (est >> low) & ((1 << (high - low)) - 1)

        walk.step(u, Step(s, 0.0, 1.0), mean)
        calls += 1
        if progress:
            progress(1)
    return np.where(done, final, np.clip(u, lo, hi - 1)), calls
