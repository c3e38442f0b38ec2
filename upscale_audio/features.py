"""Input features of the backbone that are pure functions of the value (docs/DESIGN.md §3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP = 8.0  # offsets are clipped to +-8 bins of the stage's range


def predictor_features(x_hat: torch.Tensor, value: torch.Tensor, revealed: torch.Tensor, low: torch.Tensor,
                       width: torch.Tensor, smooth_width: int,
                       centre: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Local predictions of each sample from its neighbours, as (prediction - x_hat) / range.

    x_hat float [B, T] (unknown bits at their bin centre), value long [B, T], revealed float [B, T],
    low/width long [B, 1] (the stage of each row) -> 7 features float [B, T] each.

    Where a prediction falls inside the bin is what the low bits depend on: a good predictor
    puts it within a few bins, so the offsets are clipped to +-8 bins of the stage's range::

        interp  (x[n-1] + x[n+1]) / 2          cubic  (-x[n-2] + 9 x[n-1] + 9 x[n+1] - x[n+2]) / 16
        left    2 x[n-1] - x[n-2]              right  2 x[n+1] - x[n+2]
        smooth  moving average over smooth_width samples

    and where the sample lies in the stage's range, in [-1, 1): the revealed digit's bin centre
    (0 elsewhere), or, given ``centre`` float [B, T] ((lo + hi) / 2 of what is known), that centre
    at every position (the same numbers for revealed positions and for linear PCM of whole stages;
    for G.711 bins the unrevealed centre moves), then log2 of the stage's range / 16.
    """
    scale = torch.pow(2.0, (low + width).float())
    k = max(smooth_width // 2, 2)
    p = F.pad(x_hat[:, None], (k, k), mode="replicate")[:, 0]
    T = x_hat.shape[1]

    def at(o: int) -> torch.Tensor:  # x[n + o]
        return p[:, k + o : k + o + T]

    smooth = F.avg_pool1d(p[:, None, k - smooth_width // 2 : p.shape[1] - k + smooth_width // 2],
                          smooth_width, stride=1)[:, 0]
    preds = [
        (at(-1) + at(1)) / 2,
        (-at(-2) + 9 * at(-1) + 9 * at(1) - at(2)) / 16,
        2 * at(-1) - at(-2),
        2 * at(1) - at(2),
        smooth,
    ]
    if centre is not None:
        position = 2.0 * torch.remainder(centre, scale) / scale - 1.0
    else:
        within = torch.remainder(value.float(), scale) + torch.pow(2.0, low.float()) / 2
        position = revealed * (2.0 * within / scale - 1.0)
    out = [((q - x_hat) / scale).clamp(-CLIP, CLIP) for q in preds]
    return out + [position, torch.log2(scale).expand_as(x_hat) / 16]
