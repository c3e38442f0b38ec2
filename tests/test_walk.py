"""The reveal walk: plans, orders, and what each step shows the network and reveals."""

from __future__ import annotations

import numpy as np
import torch

from upscale_audio import walk
from upscale_audio.runner import Window, windows


class RecordingRunner:
    """A stand-in for ChunkedRunner: windows of ``chunk`` samples with ``halo``, zero logits, and a
    record of every (stage, t_frac, window, value, revealed) the walk builds."""

    def __init__(self, chunk: int, halo: int, width: int):
        self.chunk, self.halo, self.width, self.seen = chunk, halo, width, []

    def map_chunks(self, T, rows, build, stage, t_frac, consume, iv=None, reverse=False):  # type: ignore[no-untyped-def]
        ws = windows(T, rows, self.chunk, self.halo)
        built = [(w, build(w)) for w in (reversed(ws) if reverse else ws)]
        for w, b in built:
            if b is not None:
                self.seen.append((stage, t_frac, w, b[0].copy(), b[1].copy()))
                consume(w, torch.zeros(w.core_stop - w.core_start, 1 << self.width))


def test_plan_follows_the_policy_or_reveals_one_position_per_call() -> None:
    steps = walk.plan([1, 2], {1: np.array([0.0, 0.25, 0.5]), 2: np.array([0.0])})
    assert [(s.stage, s.a, s.b) for s in steps] == [(1, 0.0, 0.25), (1, 0.25, 0.5), (1, 0.5, 1.0), (2, 0.0, 1.0)]
    assert steps[1].t_frac(4) == (1 + 0.25) / 4
    full = walk.plan([0], None, 5)
    assert [(s.a, s.b) for s in full] == [(i / 5, (i + 1) / 5) for i in range(5)]


def test_orders_are_keyed_by_absolute_index_and_ranks_are_a_permutation() -> None:
    keys = walk.row_keys((7,), 2)
    o = walk.Orders(keys)
    np.testing.assert_array_equal(o.keys(1, 3, 100, 200)[50:], o.keys(1, 3, 150, 200))
    shifted = walk.Orders(keys, frame0=100)
    np.testing.assert_array_equal(shifted.keys(0, 3, 0, 50), o.keys(0, 3, 100, 150))
    assert not np.array_equal(o.keys(0, 3, 0, 50), o.keys(1, 3, 0, 50))  # rows differ
    ranked = walk.Orders(keys, ranked=64)
    r = np.concatenate([ranked.keys(1, 2, 0, 30), ranked.keys(1, 2, 30, 64)])
    np.testing.assert_array_equal(np.sort(r * 64 - 0.5), np.arange(64))
    np.testing.assert_array_equal(np.argsort(r), np.argsort(o.keys(1, 2, 0, 64)))


def test_each_position_is_revealed_once_and_the_network_sees_exactly_the_earlier_digits() -> None:
    rng = np.random.default_rng(0)
    T, schedule = 300, (8, 4, 4)
    truth = rng.integers(0, 65536, (2, T))
    runner = RecordingRunner(chunk=70, halo=9, width=4)
    orders = walk.Orders(walk.row_keys((3,), 2))
    w = walk.Walk(runner, schedule, orders)  # type: ignore[arg-type]
    maps = w.maps
    u = (truth >> 8) << 8  # stage 0 known: stages 1 and 2 are walked
    revealed_at: dict[tuple[int, int, int], float] = {}

    def truth_digits(call: walk.Call) -> np.ndarray:
        for p in call.pos:
            assert (call.step.stage, call.row, int(p)) not in revealed_at  # once per stage
            revealed_at[(call.step.stage, call.row, int(p))] = call.step.a
        k = orders.keys(call.row, call.step.stage, 0, T)[call.pos]
        assert np.all((k >= call.step.a) & (k < call.step.b))
        assert torch.equal(call.dlo, torch.zeros(len(call.pos), dtype=torch.long))
        return maps.digit(truth[call.row, call.pos], call.step.stage)

    steps = walk.plan([1, 2], {1: np.array([0.0, 0.3, 0.7]), 2: np.array([0.0, 0.5])})
    assert w.run(u, steps, truth_digits) == 5
    np.testing.assert_array_equal(u, truth)  # every digit of every open stage written, nothing else
    assert len(revealed_at) == 2 * 2 * T
    for stage, t_frac, win, value, revealed in runner.seen:  # inputs: x_future iff revealed earlier
        st = int(np.asarray(stage))
        a = t_frac * 3 - st
        k = orders.keys(win.row, st, win.start, win.stop)
        np.testing.assert_array_equal(revealed, k < a - 1e-12)
        seg = truth[win.row, win.start : win.stop]
        low, high = maps.lows[st], maps.lows[st] + maps.schedule[st]
        np.testing.assert_array_equal(value, np.where(revealed, (seg >> low) << low, (seg >> high) << high))


def test_a_reverse_walk_visits_steps_and_windows_last_to_first() -> None:
    runner = RecordingRunner(chunk=50, halo=5, width=8)
    w = walk.Walk(runner, (8, 8), walk.Orders(walk.row_keys((1,), 1)))  # type: ignore[arg-type]
    u = np.zeros((1, 120), dtype=np.int64)
    steps = walk.plan([0], {0: np.array([0.0, 0.5])})
    w.run(u, steps, lambda call: None, reverse=True)
    order = [(t, win.core_start) for _, t, win, _, _ in runner.seen]
    assert order == sorted(order, reverse=True)
    assert isinstance(runner.seen[0][2], Window)
