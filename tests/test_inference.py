from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import save_tiny_model, speechlike
from upscale_audio import ardm, bits, checkpoint, intervals
from upscale_audio.engine import TorchNet
from upscale_audio.enhance import enhance_array
from upscale_audio.runner import ChunkedRunner
from upscale_audio.scoring import bits_per_sample, chunked_ce_fn


def test_chunked_logits_equal_whole_sequence_logits(tiny_model: Path) -> None:
    ckpt = checkpoint.load(tiny_model)
    u = torch.from_numpy(speechlike(1000, channels=2).astype(np.int64) + 32768)
    maps = ckpt.maps
    key = torch.rand(2, 1000)
    revealed = key < 0.4
    tf = torch.tensor([0.7, 0.7])
    # the low byte under 8 known bits; the high byte under mu-law bins, which cut its edge digits
    mu_law = tuple(torch.from_numpy(b) for b in intervals.g711_of_u(u.numpy(), "ulaw"))
    for stage, iv in ((torch.tensor([1, 1]), ardm.top_bits_interval(u, 8)), (torch.tensor([0, 0]), mu_law)):
        past, future, target = maps.split(u, stage)
        value = torch.where(revealed, future, past)
        allowed = maps.allowed(u, *iv, stage)
        whole = ardm.ce_fn_of(ckpt.model)(value, revealed.float(), stage, tf, allowed, target, *iv)
        for chunk in (7, 64, 333, 5000):
            runner = ChunkedRunner(TorchNet(ckpt.model), ckpt.halo, chunk=chunk, max_batch=3)
            part = chunked_ce_fn(runner)(value, revealed.float(), stage, tf, allowed, target, *iv)
            torch.testing.assert_close(part, whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["sample", "mean"])
def test_same_seed_same_output_whatever_the_chunk_size(tiny_model: Path, mode: str) -> None:
    ckpt = checkpoint.load(tiny_model)
    u = speechlike(700, channels=2).astype(np.int64) + 32768
    outs = [enhance_array(u, 8, ckpt, mode=mode, steps=4, seed=3, chunk=c).u for c in (50, 123, 700, 10_000)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    other_seed = enhance_array(u, 8, ckpt, mode=mode, steps=4, seed=4).u
    if mode == "mean":  # the posterior mean draws nothing: the seed cannot matter
        np.testing.assert_array_equal(other_seed, outs[0])
    else:
        assert not np.array_equal(other_seed, outs[0])


@pytest.mark.parametrize("schedule,model_known", [((8, 8), 0), ((2,) * 8, 0), ((8, 2, 2, 2, 2), 0), ((4,) * 4, 0)])
def test_known_bits_never_change_for_every_depth(tmp_path: Path, schedule, model_known) -> None:  # type: ignore[no-untyped-def]
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", schedule, model_known))
    rng = np.random.default_rng(0)
    for known in range(1, 16):
        channels = 1 + known % 2
        u = rng.integers(0, 65536, (channels, 60))
        for mode in ("sample", "mean"):
            res = enhance_array(u, known, ckpt, mode=mode, steps=2, seed=known, chunk=25)
            np.testing.assert_array_equal(bits.keep_top_bits(res.u, known), bits.keep_top_bits(u, known))
            assert res.u.min() >= 0 and res.u.max() <= 65535
            stages = len(ckpt.maps.modelled_stages(known))
            assert res.calls == (1 if mode == "mean" else stages * 2)


def test_network_calls_equal_stages_times_budget(tmp_path: Path) -> None:
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", (2,) * 8, 0))
    u = np.random.default_rng(1).integers(0, 65536, (1, 300))
    for K in (1, 3, 16):
        assert enhance_array(u, 8, ckpt, steps=K).calls == 4 * K
    assert enhance_array(u[:, :20], 14, ckpt, steps="full").calls == 20  # one stage, one position per call


def test_full_steps_reveal_one_position_per_call(tiny_model: Path) -> None:
    ckpt = checkpoint.load(tiny_model)
    u = speechlike(40).astype(np.int64) + 32768
    res = enhance_array(u, 8, ckpt, steps="full", seed=1, chunk=15)
    np.testing.assert_array_equal(res.u >> 8, u >> 8)
    assert res.calls == 40


def test_posterior_mean_of_uniform_model_is_bin_centre(tmp_path: Path) -> None:
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", perturb=False))
    u = speechlike(100).astype(np.int64) + 32768
    res = enhance_array(u, 8, ckpt, mode="mean")
    np.testing.assert_array_equal(res.u, ((u >> 8) << 8) + 128)  # E = 127.5 rounds half up


def test_posterior_mean_of_uniform_model_for_unaligned_intervals_is_exact(tmp_path: Path) -> None:
    """Intervals that cut digits (G.711 bins, or any [lo, hi)): a model whose logits are all equal
    weighs each allowed digit by the share of it the interval allows, so it is uniform over the
    interval's values and E[value] is the interval's centre (to the nearest value; float32
    probabilities may round a centre of k + 1/2 either way): not the centre of whole digits, nor the
    mean of the cut digits' centres."""
    from upscale_audio.enhance import enhance_intervals

    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", schedule=(8, 8), known_bits=0, perturb=False))
    lo = np.array([[1000, 300, 40000, 5, 65000, 250]])
    hi = np.array([[2100, 700, 40001, 300, 65536, 262]])
    got = enhance_intervals(lo, hi, ckpt, mode="mean").u
    centre = (lo[0] + hi[0] - 1) / 2
    assert np.all(np.abs(got[0] - centre) <= 0.5 + 1e-6), (got[0], centre)


def test_bpd_full_and_policy_on_uniform_model(tmp_path: Path) -> None:
    ckpt = checkpoint.load(save_tiny_model(tmp_path / "m.pt", perturb=False))
    items = [speechlike(300, channels=2).astype(np.int64) + 32768, speechlike(77, seed=2).astype(np.int64) + 32768]
    r = bits_per_sample(items, ckpt, passes=3)
    assert r.bits_per_sample == pytest.approx(8.0, abs=1e-4) and r.stderr == pytest.approx(0, abs=1e-6)
    assert r.samples == 677 and r.files == 2
    r = bits_per_sample(items, ckpt, steps=4)
    assert r.bits_per_sample == pytest.approx(8.0, abs=1e-4)
    r = bits_per_sample(items, ckpt, given_bits=12, passes=2)
    assert r.bits_per_sample == pytest.approx(4.0, abs=1e-4)
    with pytest.raises(ValueError, match="given-bits"):
        bits_per_sample(items, ckpt, given_bits=4)


def test_policy_cost_falls_with_budget_and_stays_above_elbo(tiny_model: Path) -> None:
    ckpt = checkpoint.load(tiny_model)
    items = [speechlike(2000).astype(np.int64) + 32768]
    full = bits_per_sample(items, ckpt, passes=8)
    costs = [bits_per_sample(items, ckpt, steps=K).bits_per_sample for K in (1, 4, 16)]
    assert costs[0] >= costs[1] - 0.02 >= costs[2] - 0.04
    assert costs[2] > full.bits_per_sample - 4 * full.stderr - 0.05


class _SlowNet:
    """A net that takes a while per call and records how many calls run at once (``lanes`` of them
    may): its output is each window's value as float, so a mix-up of windows would show."""

    lanes = 3

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.running = self.most = 0

    def __call__(self, value, revealed, stage, t_frac, lo=None, hi=None):  # type: ignore[no-untyped-def]
        import time

        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.01)
        with self.lock:
            self.running -= 1
        return value[..., None].astype(np.float32)


def test_a_runner_with_lanes_overlaps_calls_and_consumes_windows_in_order() -> None:
    """Lanes run up to ``lanes`` calls at once, yet every window's own output reaches ``consume``
    and in the order a single lane gives (what a coder relies on)."""
    T, rows = 1000, 2
    u = np.arange(rows * T, dtype=np.int64).reshape(rows, T)
    for lanes in (1, 3):
        net = _SlowNet()
        net.lanes = lanes
        seen: list[tuple[int, int]] = []

        def consume(w, out, seen=seen):  # type: ignore[no-untyped-def]
            assert np.array_equal(out[:, 0], u[w.row, w.core_start : w.core_stop].astype(np.float32))
            seen.append((w.row, w.core_start))

        ChunkedRunner(net, halo=7, chunk=90).map_chunks(
            T, rows, lambda w: (u[w.row, w.start : w.stop], np.zeros(w.stop - w.start, bool)), 0, 0.0, consume)
        assert seen == [(r, a) for r in range(rows) for a in range(0, T, 90)]
        assert net.most == lanes


class _LowestDigitNet:
    """Logits that are equal at the high-byte stage (so the distribution is the edge shares') and
    pile the low-byte stage onto its lowest allowed digit: a mean that refines straddling bins
    differs from one that takes the centre of each part."""

    def __call__(self, value, revealed, stage, t_frac, lo=None, hi=None):  # type: ignore[no-untyped-def]
        B, T = value.shape
        out = np.zeros((B, T, 256), dtype=np.float32)
        out[stage == 1] = -20.0 * np.arange(256, dtype=np.float32)
        return out


def test_the_mean_refines_the_digit_a_straddling_bin_took() -> None:
    """E = sum_{d != d*} p_d c_d + p_d* E[x | d*]: the high-byte stage weighs the two parts of
    [200, 326) by their sizes (56 and 70 values) and lands in the upper one (d* = 1); the low-byte
    stage puts all of that part's mass on its lowest value, 256. So the mean is
    (56 * 227.5 + 70 * 256) / 126 = 243.3, not the bin's centre 262.5. A bin inside one high byte
    takes its lowest value; a linear interval is not refined (one call's estimate)."""
    from upscale_audio.inference import generate
    from upscale_audio.walk import row_keys

    runner = ChunkedRunner(_LowestDigitNet(), halo=0, chunk=100)
    lo = np.array([[200, 1030, 512]])
    hi = np.array([[326, 1100, 1024]])
    u, calls = generate(runner, lo, hi, (8, 8), [0, 1], None, row_keys([1], 1), mode="mean")
    assert calls == 2
    assert u[0, 0] == round((56 * 227.5 + 70 * 256) / 126)
    assert u[0, 1] == 1030
    assert u[0, 2] == 768  # two whole high bytes, equal weights: 767.5 rounded up, no refinement
