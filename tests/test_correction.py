"""The learned correction of the classical estimate (correction.py): the numpy net against its torch
twin, the features against a plain loop, the shift it applies, blocks, and the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from upscale_audio import classical, correction, intervals
from upscale_audio.correction_net import CorrectionNet


def _random_net(seed: int, arch: correction.Arch = correction.Arch()) -> CorrectionNet:
    torch.manual_seed(seed)
    net = CorrectionNet(arch)
    with torch.no_grad():
        net.out.weight.normal_(0, 0.3)  # starts at zero: give the output layer something to pass on
        net.out.bias.fill_(0.1)
    return net


@pytest.mark.parametrize("arch", [correction.Arch(), correction.Arch(12, (1, 64, 3, 200))])
def test_numpy_forward_matches_the_torch_twin(arch: correction.Arch) -> None:
    net = _random_net(0, arch)
    x = np.random.default_rng(0).normal(size=(correction.N_FEATURES, 777)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)[None])[0].numpy()
    got = correction.forward_np(net.params_np(), x, arch)
    assert np.abs(want).max() > 0.05  # the comparison is not between two zeros
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    for chunk in (50, 300):  # pieces shorter and longer than the net's reach (63 and 268 a side)
        np.testing.assert_allclose(correction.forward_np(net.params_np(), x, arch, chunk=chunk), got, rtol=0, atol=1e-6)


def test_the_shape_travels_with_the_weights(tmp_path: Path) -> None:
    arch = correction.Arch(12, (1, 64, 3, 200))
    net = _random_net(5, arch)
    correction.save(tmp_path / "c.npz", net.params_np(), {"steps": 1, **arch.meta()})
    back = correction.load(tmp_path / "c.npz")
    assert back.arch == arch and back.arch.context == 268 + correction.RMS_HALF
    x = np.random.default_rng(1).normal(size=(correction.N_FEATURES, 500)).astype(np.float32)
    np.testing.assert_array_equal(correction.forward_np(back.params, x, back.arch),
                                  correction.forward_np(net.params_np(), x, arch))
    assert correction.Arch.of({}) == correction.Arch()  # weights saved before the shape was kept
    correction.save(tmp_path / "bad.npz", net.params_np(), {"steps": 1})  # the shape left out: read as Arch()
    with pytest.raises(ValueError, match="do not fit"):
        correction.load(tmp_path / "bad.npz")


def test_weights_round_trip_through_numpy() -> None:
    params = _random_net(4).params_np()
    net = CorrectionNet()
    net.load_params_np(params)
    again = net.params_np()
    assert again.keys() == params.keys()
    for k in params:
        np.testing.assert_array_equal(again[k], params[k])


def test_features_against_a_plain_loop() -> None:
    rng = np.random.default_rng(1)
    T = 600
    lo = rng.integers(0, 60000, T)
    hi = lo + rng.integers(1, 1024, T)
    est = lo + rng.uniform(-0.5, 1, T) * (hi - lo) - 0.5
    local, wiener, mu = est + 3, est - 5, est + 1
    sigma = rng.uniform(0, 500, T)
    f = correction.features(lo, hi, local, wiener, mu, sigma, est)
    assert f.shape == (correction.N_FEATURES, T) and f.dtype == np.float32
    for t in (0, 5, 300, T - 1):
        a, b = max(0, t - correction.RMS_HALF), min(T, t + correction.RMS_HALF + 1)
        rms = np.sqrt(np.mean((est[a:b] - correction.MID) ** 2)) + 8.0
        centre = (lo[t] + hi[t] - 1) / 2
        want = [(centre - correction.MID) / rms, (est[t] - correction.MID) / rms, (wiener[t] - correction.MID) / rms,
                (local[t] - correction.MID) / rms, (mu[t] - correction.MID) / rms, np.log(sigma[t] + 1) / 5,
                np.log(hi[t] - lo[t]) / 5, (est[t] - centre) / (hi[t] - lo[t])]
        np.testing.assert_allclose(f[:, t], want, rtol=1e-5, atol=1e-6)


def test_apply_shifts_by_the_net_output_times_the_bin_width() -> None:
    net = CorrectionNet()  # output layer zero: the shift is 0.5 * tanh(bias) everywhere
    params = net.params_np()
    params["out_b"] = np.array([np.arctanh(0.5)], dtype=np.float32)  # shift 0.25 of a bin
    corr = correction.Correction(params, {})
    lo = np.array([[100, 200, 300]])
    hi = np.array([[104, 216, 556]])
    est = np.array([[101.0, 205.0, 400.0]])
    got = correction.apply(corr, lo, hi, est, est, est, np.ones_like(est), est)
    np.testing.assert_allclose(got, est + 0.25 * (hi - lo), rtol=0, atol=1e-4)


@pytest.mark.parametrize("arch", [correction.Arch(), correction.Arch(8, (1, 700, 2))])
def test_interval_mean_with_a_correction_keeps_bins_and_blocks(arch: correction.Arch) -> None:
    rng = np.random.default_rng(2)
    x = np.cumsum(rng.normal(size=(1, 5000)), axis=1)
    u = np.clip(np.round(x / x.std() * 3000) + 32768, 0, 65535).astype(np.int64)
    lo, hi = (v.astype(np.int64) for v in intervals.g711(intervals.g711_encode(u, "ulaw"), "ulaw"))
    net = _random_net(3, arch)
    corr = correction.Correction(net.params_np(), arch.meta())
    whole = classical.interval_mean(lo, hi, 8000, corr=corr)
    assert intervals.check_inside(whole, lo, hi)
    assert not np.array_equal(whole, classical.interval_mean(lo, hi, 8000))  # the correction did something
    for block in (1024, 2944):  # the correction's reach is part of the blocks' context
        np.testing.assert_array_equal(classical.interval_mean(lo, hi, 8000, block=block, corr=corr), whole)


@pytest.mark.skipif(not correction.BUNDLED.is_file(), reason="no shipped correction weights")
def test_the_shipped_weights_load_and_fit_the_net() -> None:
    corr = correction.bundled()
    assert corr is not None and corr.meta["steps"] > 0
    shapes = {k: v.shape for k, v in CorrectionNet(corr.arch).params_np().items()}
    assert {k: v.shape for k, v in corr.params.items()} == shapes
    assert all(np.isfinite(v).all() for v in corr.params.values())


@pytest.mark.skipif(not correction.BUNDLED.is_file(), reason="no shipped correction weights")
def test_the_correction_runs_only_at_the_rates_it_was_trained_on() -> None:
    assert correction.for_rate(8000) is correction.bundled()
    assert correction.for_rate(16000) is correction.bundled()
    assert correction.for_rate(44100) is None  # not trained there: the classical estimate alone
