from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config
from upscale_audio import ardm, intervals, policy
from upscale_audio.model import build_model


@pytest.mark.parametrize(
    "schedule,known", [((8, 8), 8), ((8, 8), 0), ((2,) * 8, 0), ((4,) * 4, 6), ((8, 2, 2, 2, 2), 8), ((16,), 0)]
)
def test_zero_head_elbo_is_exactly_the_modelled_bits(schedule, known) -> None:  # type: ignore[no-untyped-def]
    """Uniform logits: every single draw of the ELBO equals the number of unknown bits."""
    m = build_model(tiny_config(schedule=schedule, known_bits=known))
    maps = ardm.StageMaps(schedule)
    u = torch.randint(0, 65536, (6, 257))
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        out = ardm.training_elbo(m, u, maps, known, g)
        torch.testing.assert_close(out["elbo"], torch.full((6,), float(16 - known)), rtol=0, atol=1e-4)
        lo, hi = ardm.top_bits_interval(u, known)
        draw = ardm.elbo_draw(ardm.ce_fn_of(m), u, maps, maps.modelled_stages(known), lo, hi, g)
        torch.testing.assert_close(draw, torch.full((6,), float(16 - known), dtype=torch.float64), rtol=0, atol=1e-4)


def test_stage_draw_reweights_so_the_elbo_stays_unbiased() -> None:
    """Drawing the low stage 3x as often: a uniform model's draws are free_bits / p(stage), i.e.
    8 / (1/4) = 32 or 8 / (3/4) = 10.67, in those proportions, and their mean is the 16 bits."""
    m = build_model(tiny_config(schedule=(8, 8), known_bits=0))
    u = torch.randint(0, 65536, (4000, 8))
    with torch.no_grad():
        out = ardm.training_elbo(m, u, ardm.StageMaps((8, 8)), 0, torch.Generator().manual_seed(1), (1, 3))
    high = out["stage"] == 0
    torch.testing.assert_close(out["elbo"][high], torch.full((int(high.sum()),), 32.0), rtol=0, atol=1e-3)
    torch.testing.assert_close(out["elbo"][~high], torch.full((int((~high).sum()),), 32 / 3), rtol=0, atol=1e-3)
    assert abs(float(high.float().mean()) - 0.25) < 0.03
    assert abs(float(out["elbo"].mean()) - 16.0) < 0.6


def test_elbo_weighting_matches_a_hand_computation() -> None:
    """D/(D-t) * sum_unrevealed CE / D for a known distribution, checked against numpy."""
    torch.manual_seed(3)
    D, W = 40, 256
    table = torch.randn(W)  # the same logits everywhere

    def net(value, revealed, stage, t_frac, *iv):  # type: ignore[no-untyped-def]
        return table.expand(value.shape[0], value.shape[1], W)

    maps = ardm.StageMaps((8, 8))
    u = torch.randint(0, 65536, (4, D))
    g = torch.Generator().manual_seed(5)
    out = ardm.training_elbo(net, u, maps, 8, g)
    g = torch.Generator().manual_seed(5)  # replay the draws
    g_stage = torch.multinomial(torch.ones(1, dtype=torch.float64), 4, replacement=True, generator=g)
    t = torch.randint(D, (4,), generator=g)
    key = torch.rand(4, D, generator=g)
    logp = torch.log_softmax(table, 0).numpy() / -np.log(2)
    for b in range(4):
        hidden = np.argsort(np.argsort(key[b].numpy())) >= t[b].item()
        ce = logp[(u[b].numpy() & 255)][hidden]
        want = D / (D - t[b].item()) * ce.sum() / D
        assert out["elbo"][b].item() == pytest.approx(want, rel=1e-5)
    assert g_stage.shape == (4,)


def test_partially_known_stage_only_scores_consistent_digits() -> None:
    maps = ardm.StageMaps((8, 8))
    u = torch.randint(0, 65536, (2, 30))
    stage = torch.tensor([1, 1])
    lo, hi = maps.allowed_digits(u, *ardm.top_bits_interval(u, 11), stage)  # 3 bits of the low byte known: 32 digits
    assert torch.all(hi - lo == 32)
    target = u & 255
    assert torch.all((target >= lo) & (target < hi))
    lp = ardm.masked_log_probs(torch.zeros(2, 30, 256), lo, hi)
    torch.testing.assert_close(ardm.ce_bits(lp, target), torch.full((2, 30), 5.0))


def test_masked_log_probs_without_a_mask_is_the_masked_result_bit_for_bit() -> None:
    """The all-digits-allowed shortcut (linear PCM) gives exactly what the masked path gives, and a
    range that excludes one digit still masks it."""
    logits = torch.randn(2, 50, 256) * 3
    lo, hi = torch.zeros(2, 50, dtype=torch.long), torch.full((2, 50), 256)
    d = torch.arange(256)
    ok = (d >= lo[..., None]) & (d < hi[..., None])
    masked = torch.log_softmax(logits.masked_fill(~ok, float("-inf")), -1)
    assert torch.equal(ardm.masked_log_probs(logits, lo, hi), masked)
    lp = ardm.masked_log_probs(logits, lo, hi - 1)
    assert torch.all(lp[..., 255] == float("-inf")) and torch.all(lp[..., 254] > float("-inf"))


def test_stage_maps_give_the_same_numbers_for_numpy_and_torch() -> None:
    """StageMaps serves training (torch) and the reveal walk (numpy): one definition, both kinds."""
    maps = ardm.StageMaps((4, 4, 8))
    g = torch.Generator().manual_seed(0)
    u = torch.randint(0, 65536, (3, 40), generator=g)
    lo, hi = intervals_of(u)
    stage = torch.tensor([0, 1, 2])
    revealed = torch.rand(3, 40, generator=g) < 0.5
    for got, want in ((maps.split(u.numpy(), stage.numpy()), maps.split(u, stage)),
                      (maps.reveal(u.numpy(), revealed.numpy(), stage.numpy()), maps.reveal(u, revealed, stage)),
                      (maps.allowed_digits(u.numpy(), lo.numpy(), hi.numpy(), stage.numpy()),
                       maps.allowed_digits(u, lo, hi, stage))):
        for a, b in zip(got, want):
            assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
            np.testing.assert_array_equal(a, b.numpy())


def intervals_of(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Known intervals of mixed kinds around u: 5 top bits in row 0, a G.711 bin in row 1, nothing in 2."""
    lo, hi = ardm.top_bits_interval(u, 5)
    gl, gh = intervals.g711_of_u(u[1].numpy(), "ulaw")
    lo[1], hi[1] = torch.from_numpy(gl), torch.from_numpy(gh)
    lo[2], hi[2] = 0, 1 << 16
    return lo, hi


def test_tracker_fills_gaps_and_keeps_ema() -> None:
    tr = policy.StepLossTracker((8, 8), 4, 0.5)
    tr.update(torch.tensor([1, 1, 1]), torch.tensor([0.0, 0.1, 0.9]), torch.tensor([8.0, 6.0, 2.0]))
    L = tr.losses(1)
    assert L[0] == pytest.approx(7.0) and L[3] == pytest.approx(2.0)
    assert L[1] == pytest.approx(4.5) and L[2] == pytest.approx(4.5)  # unseen bins: mean of seen
    assert np.all(tr.losses(0) == 8.0)


def test_t_zero_share_reveals_nothing_in_that_share_of_rows() -> None:
    """Rows drawn at t = 0 show the network no revealed digit and are scored on every position;
    the share is honoured, and 0 leaves the random draws exactly as without the option."""
    seen = []

    def net(value, revealed, stage, t_frac, *iv):  # type: ignore[no-untyped-def]
        seen.append(revealed.sum(1))
        return torch.zeros(value.shape[0], value.shape[1], 256)

    maps = ardm.StageMaps((8, 8))
    u = torch.randint(0, 65536, (4000, 50))
    out = ardm.training_elbo(net, u, maps, 8, torch.Generator().manual_seed(2), (), 0.5)
    at_zero = out["t_over_d"] == 0
    assert abs(float(at_zero.float().mean()) - (0.5 + 0.5 / 50)) < 0.03
    assert torch.equal(seen[0] == 0, at_zero)
    torch.testing.assert_close(out["step_loss"], torch.full((4000,), 8.0), rtol=0, atol=1e-4)
    plain = ardm.training_elbo(net, u, maps, 8, torch.Generator().manual_seed(2))
    zero = ardm.training_elbo(net, u, maps, 8, torch.Generator().manual_seed(2), (), 0.0)
    assert torch.equal(plain["t_over_d"], zero["t_over_d"])
