"""The reveal walk: plans, orders, and what each step shows the network and reveals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upscale_audio import ardm, inference, walk
from upscale_audio.runner import Window, windows


class RecordingRunner:
    """A stand-in for ChunkedRunner: windows of ``chunk`` samples with ``halo``, zero logits, and a
    record of every (stage, t_frac, window, value, revealed) the walk builds."""

    def __init__(self, chunk: int, halo: int, width: int):
        self.chunk, self.halo, self.width, self.seen = chunk, halo, width, []
        self.net = None  # gives logits

    def map_chunks(self, T, rows, build, stage, t_frac, consume, iv=None, reverse=False):  # type: ignore[no-untyped-def]
        ws = windows(T, rows, self.chunk, self.halo)
        built = [(w, build(w)) for w in (reversed(ws) if reverse else ws)]
        for w, b in built:
            if b is not None:
                self.seen.append((stage, t_frac, w, b[0].copy(), b[1].copy()))
                consume(w, np.zeros((w.core_stop - w.core_start, 1 << self.width), dtype=np.float32))


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
        np.testing.assert_array_equal(call.dlo, np.zeros(len(call.pos), dtype=np.int64))
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


def test_the_walks_masked_log_softmax_is_the_training_one() -> None:
    """walk.masked_log_softmax (numpy, inference) against ardm.masked_log_probs (torch, training),
    with and without masks and edge shares, in float32 and float64."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(300, 256, generator=g) * 4
    dlo = torch.randint(0, 128, (300,), generator=g)
    dhi = dlo + torch.randint(1, 129, (300,), generator=g)
    s_lo, s_hi = torch.rand(300, generator=g) * 0.99 + 0.01, torch.rand(300, generator=g) * 0.99 + 0.01
    whole = torch.ones(300)
    for lo, hi, a, b in ((dlo, dhi, whole, whole), (torch.zeros_like(dlo), torch.full_like(dhi, 256), whole, whole),
                         (dlo, dhi, s_lo, s_hi), (torch.zeros_like(dlo), torch.full_like(dhi, 256), s_lo, s_hi)):
        want = ardm.masked_log_probs(logits[None], lo[None], hi[None], a[None], b[None])[0].numpy()
        got = walk.masked_log_softmax(logits.numpy(), lo.numpy(), hi.numpy(), np.float32, a.numpy(), b.numpy())
        assert got.dtype == np.float32
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
        ok = np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=2e-5)
        got64 = walk.masked_log_softmax(logits.numpy(), lo.numpy(), hi.numpy(), np.float64, a.numpy(), b.numpy())
        d = torch.arange(256)
        allowed = (d >= lo[:, None]) & (d < hi[:, None])  # ardm.masked_log_probs casts to float32
        weight = torch.ones(300, 256, dtype=torch.float64)  # share of each digit, by its definition
        weight[torch.arange(300), lo] = a.double()
        weight[torch.arange(300), hi - 1] = torch.where(hi - 1 > lo, b.double(), weight[torch.arange(300), hi - 1])
        want64 = torch.log_softmax(logits.double().masked_fill(~allowed, float("-inf")) + weight.log(), -1).numpy()
        np.testing.assert_allclose(got64[ok], want64[ok], rtol=0, atol=1e-12)


def test_sample_from_respects_masks_and_matches_probabilities() -> None:
    logits = np.log(np.array([1e-30, 1.0, 2.0, 3.0], dtype=np.float32))[None].repeat(20000, 0)
    lp = walk.masked_log_softmax(logits, np.zeros(20000, dtype=np.int64), np.full(20000, 3))
    d = inference.sample_from(np.exp(lp), np.random.default_rng(0).random(20000))
    counts = np.bincount(d, minlength=4) / 20000
    np.testing.assert_allclose(counts, [0.0, 1 / 3, 2 / 3, 0.0], atol=0.015)
    assert inference.sample_from(np.exp(lp[:1]), np.array([0.999999999]))[0] == 2  # never past the allowed range
    assert inference.expected_digit(np.exp(lp[:1]))[0] == pytest.approx(5 / 3)


def test_sample_from_is_the_inverse_cdf() -> None:
    """Each draw is the first digit whose cumulative probability exceeds the uniform (searchsorted)."""
    rng = np.random.default_rng(2)
    lp = walk.masked_log_softmax(rng.normal(size=(500, 16)).astype(np.float32) * 3,
                                 np.zeros(500, dtype=np.int64), np.full(500, 16))
    unif = rng.random(500)
    cdf = np.cumsum(np.exp(lp.astype(np.float64)), -1)
    cdf /= cdf[:, -1:]
    want = np.array([np.searchsorted(c, x, side="right") for c, x in zip(cdf, unif)])
    np.testing.assert_array_equal(inference.sample_from(np.exp(lp), unif), want)
