"""Step budgets: the per-step losses tracked in training, and the DP that turns them into the
positions each network call reveals (docs/DESIGN.md §4).

Revealing k positions in parallel at step t costs k * L_t, where L_t is the expected loss of one
position at step t. Given per-step losses ``L[0..T-1]`` (sorted descending, as the official code
does) and a budget of K calls, the dynamic programme splits 0..T into K segments
[s_0=0, s_1), [s_1, s_2), ..., [s_{K-1}, T) minimising  sum_i (s_{i+1} - s_i) * L[s_i]::

    cost[k, e] = min_{s < e} cost[k-1, s] + (e - s) * L[s]        O(K * T^2)

A policy is stored as the K segment starts divided by T (fractions in [0, 1)), so one policy serves
any length D: call i reveals the positions whose order rank r satisfies
floor(f_i * D) <= r < floor(f_{i+1} * D).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .bits import _jit


@_jit
def _dp_nb(L: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    T = L.shape[0]
    inf = np.inf
    cost = np.full(T + 1, inf)
    cost[0] = 0.0
    costs = np.empty(K, dtype=np.float64)
    back = np.zeros((K, T + 1), dtype=np.int64)
    for k in range(K):
        new = np.full(T + 1, inf)
        for e in range(1, T + 1):
            best = inf
            arg = 0
            for s in range(e):
                c = cost[s] + (e - s) * L[s]
                if c < best:
                    best = c
                    arg = s
            new[e] = best
            back[k, e] = arg
        cost = new
        costs[k] = cost[T]
    return costs, back


def dp_policy_np(L: np.ndarray, K: int) -> tuple[np.ndarray, float]:
    """Numpy twin of :func:`dp_policy` (the spec's pseudocode)."""
    L = np.asarray(L, dtype=np.float64)
    T = len(L)
    s = np.arange(T + 1)[:, None]
    e = np.arange(T + 1)[None, :]
    Lp = np.concatenate([L, [0.0]])
    seg = np.where(e > s, (e - s) * Lp[:, None], np.inf)
    cost = np.full(T + 1, np.inf)
    cost[0] = 0.0
    back = []
    for _ in range(K):
        tot = cost[:, None] + seg
        arg = tot.argmin(0)
        cost = tot[arg, np.arange(T + 1)]
        back.append(arg)
    path, t = [], T
    for k in reversed(range(K)):
        t = int(back[k][t])
        path.append(t)
    return np.array(path[::-1], dtype=np.int64), float(cost[T])


def dp_policy(L: np.ndarray, K: int) -> tuple[np.ndarray, float]:
    """Cheapest K-call split of T steps with per-step losses L [T].

    Returns (segment starts int64 [K], beginning with 0; expected total cost). K must be <= T.
    """
    L = np.ascontiguousarray(L, dtype=np.float64)
    if not 1 <= K <= len(L):
        raise ValueError(f"budget K={K} must be in 1..{len(L)}")
    costs, back = _dp_nb(L, K)
    path, t = [], len(L)
    for k in range(K - 1, -1, -1):
        t = int(back[k, t])
        path.append(t)
    return np.array(path[::-1], dtype=np.int64), float(costs[K - 1])


def dp_costs(L: np.ndarray, K: int) -> np.ndarray:
    """Optimal cost for every budget 1..K (float64 [K])."""
    return _dp_nb(np.ascontiguousarray(L, dtype=np.float64), K)[0]


def policy_cost(L: np.ndarray, starts: np.ndarray) -> float:
    """Expected cost of a given policy (segment starts [K]) under per-step losses L [T]."""
    L = np.asarray(L, dtype=np.float64)
    ends = np.append(starts[1:], len(L))
    return float(sum((e - s) * L[s] for s, e in zip(starts, ends)))


def naive_starts(T: int, K: int) -> np.ndarray:
    """Equal segments: integer linspace(0, T, K+1)[:-1] (the official ``get_naive_policy``)."""
    return np.floor(np.linspace(0, T, K + 1)[:-1] + 1e-9).astype(np.int64)


def fractions_from_starts(starts: np.ndarray, T: int) -> np.ndarray:
    return np.asarray(starts, dtype=np.float64) / T


def stage_policy(step_losses: np.ndarray, K: int, naive: bool = False) -> np.ndarray:
    """Policy fractions [K'] for one stage from its tracked per-bin losses [T] (bits per position).

    The losses are sorted descending first (as the official code does). With K >= T bins the DP has no
    finer resolution, so the equal split is used (near-optimal at such budgets). ``naive`` forces
    the equal split; K' = min(K, T) unless K >= T.
    """
    T = len(step_losses)
    if naive or K >= T:
        return np.linspace(0.0, 1.0, K + 1)[:-1]
    L = np.sort(np.asarray(step_losses, dtype=np.float64))[::-1].copy()
    starts, _ = dp_policy(L, K)
    return fractions_from_starts(starts, T)


POLICY_SCALE = 65536  # a stored policy holds its fractions as multiples of 1 / POLICY_SCALE


def quantise(fractions: np.ndarray) -> np.ndarray:
    """Fractions [K] -> int64 multiples of 1 / POLICY_SCALE (what a .uad header stores)."""
    q = np.floor(np.asarray(fractions, dtype=np.float64) * POLICY_SCALE + 0.5).astype(np.int64)
    return np.clip(q, 0, POLICY_SCALE)


def dequantise(q: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantise`: float64 fractions [K]."""
    return np.asarray(q, dtype=np.float64) / POLICY_SCALE


# ---------------------------------------------------------------------------------- tracking
class StepLossTracker:
    """EMA of the per-step loss L_t per stage, over ``bins`` equal bins of t / D (bits per position).

    Feeds the budget DP. Bins never seen fall back to the stage's mean of seen bins, then to the
    stage width (the loss of a uniform model).
    """

    def __init__(self, schedule: Sequence[int], bins: int, momentum: float):
        self.schedule = tuple(schedule)
        self.momentum = momentum
        self.values = torch.zeros(len(self.schedule), bins, dtype=torch.float64)
        self.counts = torch.zeros(len(self.schedule), bins, dtype=torch.long)

    def update(self, stage: torch.Tensor, t_over_d: torch.Tensor, step_loss: torch.Tensor) -> None:
        bins = self.values.shape[1]
        idx = (t_over_d.cpu() * bins).long().clamp(0, bins - 1)
        for s, b, v in zip(stage.cpu().tolist(), idx.tolist(), step_loss.cpu().double().tolist()):
            if self.counts[s, b] == 0:
                self.values[s, b] = v
            else:
                self.values[s, b] = self.momentum * self.values[s, b] + (1 - self.momentum) * v
            self.counts[s, b] += 1

    def losses(self, stage: int) -> np.ndarray:
        """Per-bin step losses [bins] of one stage, gaps filled."""
        v = self.values[stage].numpy().copy()
        seen = self.counts[stage].numpy() > 0
        if not seen.any():
            return np.full(len(v), float(self.schedule[stage]))
        v[~seen] = v[seen].mean()
        return v

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"values": self.values.clone(), "counts": self.counts.clone()}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        self.values = d["values"].clone().double()
        self.counts = d["counts"].clone().long()
