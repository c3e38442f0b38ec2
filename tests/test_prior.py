"""The classical prior: numba kernel against its numpy twin, the digit distribution, and the model
that starts from it (an untrained model scores exactly what the prior does)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import speechlike, tiny_config
from upscale_audio import ardm, intervals, prior
from upscale_audio.engine import TorchNet
from upscale_audio.model import build_model
from upscale_audio.runner import ChunkedRunner
from upscale_audio.scoring import chunked_ce_fn


def _known(u: np.ndarray, frac: float, depth: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rev = np.random.default_rng(seed).random(u.shape) < frac
    lo, hi = intervals.linear(u, depth)
    return np.where(rev, u, lo), np.where(rev, u + 1, hi)


@pytest.mark.parametrize("frac,half,taps", [(0.0, 40, 2), (0.5, 64, 4), (0.95, 30, 3), (0.3, 200, 8)])
def test_lmmse_kernel_equals_its_numpy_twin(frac: float, half: int, taps: int) -> None:
    u = speechlike(500, channels=2, seed=3).astype(np.int64) + 32768
    lo, hi = _known(u, frac)
    lo[1, 100:300], hi[1, 100:300] = 0, 65536  # a stretch where nothing is known
    mu, sig = prior.lmmse(lo, hi, half, taps)
    mu2, sig2 = prior.lmmse_np(lo, hi, half, taps)
    np.testing.assert_allclose(mu, mu2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sig, sig2, rtol=1e-9, atol=1e-6)
    if half <= 50:  # windows wholly inside the unknown stretch
        assert np.all(sig[1, 100 + half : 300 - half] == prior.BROAD)


def test_lmmse_predicts_a_sine_from_revealed_neighbours_far_better_than_its_bin() -> None:
    t = np.arange(4000)
    u = np.round(32768 + 8000 * np.sin(2 * np.pi * 440 * t / 16000)).astype(np.int64)[None]
    lo, hi = _known(u, 0.5)
    mu, sig = prior.lmmse(lo, hi, 128, 4)
    hidden = hi - lo > 1
    # bin-centre would be off by 74 (rms); the window's edge bias of the autocorrelation method
    # keeps a pure tone from being predicted exactly
    assert np.sqrt(np.mean((mu - u)[hidden] ** 2)) < 40
    assert np.median(np.abs(mu - u)[hidden]) < 30  # bin-centre: 64


def test_lmmse_at_a_sample_does_not_depend_on_the_signal_beyond_its_window() -> None:
    u = speechlike(900, seed=5).astype(np.int64) + 32768
    lo, hi = _known(u, 0.4)
    mu, sig = prior.lmmse(lo, hi, 50, 3)
    lo2, hi2 = lo.copy(), hi.copy()
    lo2[0, 700:], hi2[0, 700:] = 0, 65536
    mu2, sig2 = prior.lmmse(lo2, hi2, 50, 3)
    np.testing.assert_array_equal(mu[0, :650], mu2[0, :650])  # bit-identical: exact integer window sums
    np.testing.assert_array_equal(sig[0, :650], sig2[0, :650])


def test_digit_log_probs_normalise_over_the_allowed_digits_only() -> None:
    B, T = 2, 50
    rng = np.random.default_rng(0)
    u = rng.integers(0, 65536, (B, T))
    lo, hi = intervals.g711(intervals.g711_encode(u, "alaw"), "alaw")
    mu = torch.from_numpy(u + rng.normal(0, 300, (B, T)))
    sigma = torch.from_numpy(rng.uniform(0.1, 3000, (B, T)))
    for s, low in ((0, 8), (1, 0)):
        past = torch.from_numpy((u >> (low + 8)) << (low + 8))
        lp = prior.digit_log_probs(mu, sigma, past, torch.from_numpy(lo), torch.from_numpy(hi),
                                   torch.full((B, 1), low), 256)
        allowed = ardm.StageMaps((8, 8)).allowed(torch.from_numpy(u), torch.from_numpy(lo), torch.from_numpy(hi),
                                                 torch.tensor([s, s]))
        dlo, dhi = allowed[:2]
        d = torch.arange(256)
        ok = (d >= dlo[..., None]) & (d < dhi[..., None])
        assert torch.all(torch.isfinite(lp) == ok)
        # per whole digit: the model's distribution weighs the edge digits by their shares, which
        # gives the prior's mass of each digit's part of the interval, normalised already
        model_lp = ardm.masked_log_probs(lp, *allowed)
        torch.testing.assert_close(model_lp.exp().sum(-1).double(), torch.ones(B, T, dtype=torch.float64),
                                   atol=1e-4, rtol=0)
        share = torch.ones(B, T, 256)
        share.scatter_(-1, dlo[..., None], allowed[2][..., None].float())
        share.scatter_(-1, (dhi - 1)[..., None], allowed[3][..., None].float())
        raw = (lp.exp() * share).sum(-1).double()
        torch.testing.assert_close(raw, torch.ones(B, T, dtype=torch.float64), atol=1e-4, rtol=0)


def test_digit_log_probs_match_a_direct_logistic_computation() -> None:
    mu, sigma = 1000.3, 7.0
    lp = prior.digit_log_probs(torch.tensor([[mu]]), torch.tensor([[sigma]]), torch.tensor([[768]]),
                               torch.tensor([[0]]), torch.tensor([[65536]]), torch.tensor([[0]]), 256)[0, 0]
    s = sigma * math.sqrt(3) / math.pi
    cdf = 1 / (1 + np.exp(-((768 + np.arange(257) - 0.5) - mu) / s))
    p = np.diff(cdf) / (cdf[-1] - cdf[0])
    want = (1 - prior.UNIFORM) * p + prior.UNIFORM / 256
    np.testing.assert_allclose(lp.exp().numpy(), want, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("known", [0, 8])
def test_an_untrained_model_scores_exactly_what_the_prior_scores(known: int) -> None:
    """Zero output layer: the model's ELBO draw equals the prior's own CE under the same draws."""
    cfg = tiny_config(schedule=(8, 8), known_bits=known, prior="lmmse", prior_half=24, prior_taps=2)
    m = build_model(cfg)
    maps = ardm.StageMaps((8, 8))
    u = torch.from_numpy(speechlike(300, channels=3, seed=1).astype(np.int64) + 32768)
    out = ardm.training_elbo(m, u, maps, known, torch.Generator().manual_seed(7), (), 0.0, 0.5)

    def prior_only(value, revealed, stage, t_frac, iv_lo, iv_hi):  # type: ignore[no-untyped-def]
        mu, sig = m.prior_of(value, revealed, stage, iv_lo, iv_hi)
        low = m.lows[stage][:, None]
        past = (value >> (low + 8)) << (low + 8)
        return prior.digit_log_probs(mu, sig, past, iv_lo, iv_hi, low, 256)

    want = ardm.training_elbo(prior_only, u, maps, known, torch.Generator().manual_seed(7), (), 0.0, 0.5)
    torch.testing.assert_close(out["elbo"], want["elbo"], rtol=1e-5, atol=1e-5)
    assert bool(out["conditioned"].any())


def test_a_prior_model_gives_the_same_output_whatever_the_chunk_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import save_tiny_model
    from upscale_audio import checkpoint
    from upscale_audio.enhance import enhance_intervals

    ckpt = checkpoint.load(save_tiny_model(tmp_path / "p.pt", (8, 8), 0, prior="lmmse", prior_half=24, prior_taps=2))
    x = speechlike(700, channels=2, seed=2).astype(np.int64) + 32768
    lo, hi = intervals.g711(intervals.g711_encode(x, "ulaw"), "ulaw")
    for mode in ("sample", "mean"):
        outs = [enhance_intervals(lo, hi, ckpt, mode=mode, steps=3, seed=1, chunk=c).u for c in (37, 200, 5000)]
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])
        assert intervals.check_inside(outs[0], lo, hi)
    # and the chunked logits equal the whole-sequence ones
    u = torch.from_numpy(x)
    stage = torch.tensor([1, 1])
    revealed = torch.rand(2, 700) < 0.3
    past, future, target = ckpt.maps.split(u, stage)
    value = torch.where(revealed, future, past)
    iv = tuple(torch.from_numpy(b) for b in intervals.g711_of_u(x, "ulaw"))  # scoring bins hold x
    allowed = ckpt.maps.allowed(u, iv[0], iv[1], stage)
    tf = torch.tensor([0.6, 0.6])
    whole = ardm.ce_fn_of(ckpt.model)(value, revealed.float(), stage, tf, allowed, target, *iv)
    for chunk in (50, 333):
        part = chunked_ce_fn(ChunkedRunner(TorchNet(ckpt.model), ckpt.halo, chunk=chunk))(
            value, revealed.float(), stage, tf, allowed, target, *iv)
        torch.testing.assert_close(part, whole, rtol=1e-4, atol=1e-4)
