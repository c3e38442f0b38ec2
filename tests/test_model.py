from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_config
from upscale_audio.model import build_model


def _inputs(B: int, T: int, stage: int = 1):  # type: ignore[no-untyped-def]
    # a smooth signal, so the clipped detail features stay inside their range (non-zero gradients)
    t = torch.arange(T)[None].float()
    u = (32768 + 3000 * torch.sin(t / 7 + torch.arange(B)[:, None]) + torch.randint(0, 64, (B, T))).long()
    value = (u >> 8) << 8
    revealed = (torch.rand(B, T) < 0.3).float()
    value = torch.where(revealed > 0, u, value)
    return value, revealed, torch.full((B,), stage), torch.rand(B)


@pytest.mark.parametrize("features", ["predict", "scaled", "embed", "plain"])
def test_receptive_field_matches_gradient_probe(features: str) -> None:
    m = build_model(tiny_config(features=features))
    with torch.no_grad():
        m.out.weight.normal_()
    value, revealed, stage, tf = _inputs(1, 301)
    feats, x_hat = m.features(value, revealed, stage)
    x_hat = x_hat.clone().requires_grad_(True)
    feats = m.features_from_xhat(x_hat, value, revealed, stage)
    out = m.forward_features(feats, value, stage, tf)
    out[0, 150].sum().backward()
    assert x_hat.grad is not None
    reach = (x_hat.grad[0] != 0).nonzero()[:, 0]
    width = int(reach.max() - reach.min()) + 1
    assert width == m.receptive_field(), (width, m.receptive_field())


def test_zero_head_gives_uniform_logits_and_shapes() -> None:
    m = build_model(tiny_config())
    value, revealed, stage, tf = _inputs(3, 97)
    out = m(value, revealed, stage, tf)
    assert out.shape == (3, 97, 256)
    assert torch.all(out == 0)


def test_multi_stage_outputs_are_padded_per_stage() -> None:
    m = build_model(tiny_config(schedule=(8, 4, 4), known_bits=0))
    with torch.no_grad():
        m.out.weight.normal_()
    value, revealed, _, tf = _inputs(3, 50)
    out = m(value, revealed, torch.tensor([0, 1, 2]), tf)
    assert out.shape == (3, 50, 256)
    assert torch.isfinite(out[0]).all()
    assert torch.isinf(out[1, :, 16:]).all() and torch.isfinite(out[1, :, :16]).all()


def test_logits_do_not_depend_on_hidden_digits() -> None:
    """Positions not yet revealed carry x_past only: their true low digits cannot leak."""
    m = build_model(tiny_config())
    with torch.no_grad():
        m.out.weight.normal_()
    u = torch.randint(0, 65536, (1, 200))
    revealed = (torch.rand(1, 200) < 0.5)
    stage, tf = torch.tensor([1]), torch.tensor([0.7])
    past, future = (u >> 8) << 8, u
    a = m(torch.where(revealed, future, past), revealed.float(), stage, tf)
    u2 = (u >> 8 << 8) + torch.randint(0, 256, (1, 200))  # other low bytes everywhere
    b = m(torch.where(revealed, u2, (u2 >> 8) << 8), revealed.float(), stage, tf)
    # the revealed low bytes changed: the logits must change
    assert not torch.allclose(a, b)
    u3 = torch.where(revealed, u, u2)  # change only hidden digits
    c = m(torch.where(revealed, u3, (u3 >> 8) << 8), revealed.float(), stage, tf)
    torch.testing.assert_close(a, c, rtol=0, atol=0)  # hidden digits are invisible


def test_single_stage_fast_path_equals_the_mixed_batch_path() -> None:
    """Inference computes only the current stage's output rows and skips the last block's residual;
    the logits must equal those of a mixed-stage batch (the training path) row for row."""
    m = build_model(tiny_config(schedule=(8, 8), known_bits=0)).eval()
    with torch.no_grad():
        m.out.weight.normal_(0, 0.3)
    value = torch.randint(0, 65536, (2, 300))
    revealed = (torch.rand(2, 300) < 0.4).float()
    t_frac = torch.tensor([0.3, 0.7])
    with torch.no_grad():
        mixed = m(value, revealed, torch.tensor([1, 0]), t_frac)
        fast = m(value[:1], revealed[:1], torch.tensor([1]), t_frac[:1])
    torch.testing.assert_close(fast[0], mixed[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prior", ["none", "lmmse"])
def test_a_specialist_narrowed_from_an_all_16_bit_model_gives_its_low_byte_logits(prior: str) -> None:
    """``narrow_to_stages`` keeps the low byte's output rows (and the prior's two channels): the
    specialist's logits equal the all-16-bit model's for that stage; a wrong row offset would not."""
    from upscale_audio.model import narrow_to_stages

    full = build_model(tiny_config(schedule=(8, 8), known_bits=0, prior=prior)).eval()
    with torch.no_grad():
        full.out.weight.normal_(0, 0.3)
        full.out.bias.normal_(0, 0.3)
    low = build_model(tiny_config(schedule=(8, 8), known_bits=8, prior=prior)).eval()
    low.load_state_dict(narrow_to_stages(full.state_dict(), low, full.stages))
    value, revealed, stage, t_frac = _inputs(2, 300, stage=1)
    with torch.no_grad():
        torch.testing.assert_close(low(value, revealed, stage, t_frac), full(value, revealed, stage, t_frac))
    with pytest.raises(ValueError):
        narrow_to_stages(low.state_dict(), full, low.stages)


def _g711_intervals(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from upscale_audio import intervals

    lo, hi = intervals.g711_of_u(u.numpy(), "ulaw")
    return torch.from_numpy(lo), torch.from_numpy(hi)


def test_the_interval_features_are_the_centre_position_and_log_width_of_what_is_known() -> None:
    """With interval_features: the position input is where the centre of (G.711 bin intersected
    with the digits known so far) lies in the stage's range, at every position; the last input is
    log2 of its width / 16. Without: the position is the revealed digit's, 0 where unrevealed."""
    cfg = tiny_config(schedule=(8, 8), known_bits=0)
    m = build_model(cfg.replace("model", interval_features=True)).eval()
    plain = build_model(cfg).eval()
    value, revealed, stage, _ = _inputs(2, 400, stage=1)
    lo, hi = _g711_intervals(value)
    feats, x_hat = m.features(value, revealed, stage, lo, hi)
    assert feats.shape[1] == m.input_conv.in_channels == plain.input_conv.in_channels + 1
    klo, khi = m.current_interval(value, revealed, stage, lo, hi)
    torch.testing.assert_close(feats[:, -1], torch.log2((khi - klo).float()) / 16)
    assert float(feats[:, -1].min()) == 0.0 and float(feats[:, -1].max()) > 0.3  # revealed: width 1; wide bins
    position = 6  # after x_hat / 32768 - 1 and the five predictions
    torch.testing.assert_close(feats[:, position], 2 * torch.remainder((klo + khi).float() / 2, 256) / 256 - 1)
    old, _ = plain.features(value, revealed, stage, lo, hi)
    assert bool((old[:, position][revealed == 0] == 0).all())
    torch.testing.assert_close(old[:, position][revealed > 0], feats[:, position][revealed > 0])


def test_widening_an_init_with_the_interval_features_keeps_its_linear_pcm_logits() -> None:
    """``widen_inputs`` gives the width input a zero column: for linear PCM of whole stages (and no
    interval) the widened model scores exactly what the original did; a shape it cannot widen is
    refused."""
    from upscale_audio import intervals
    from upscale_audio.model import widen_inputs

    cfg = tiny_config(schedule=(8, 8), known_bits=0)
    old = build_model(cfg).eval()
    with torch.no_grad():
        old.out.weight.normal_(0, 0.3)
    new = build_model(cfg.replace("model", interval_features=True)).eval()
    new.load_state_dict(widen_inputs(old.state_dict(), new))
    for stage, known in ((0, None), (1, 8)):
        value, revealed, st, t_frac = _inputs(2, 300, stage=stage)
        if stage == 0:  # what a call of the first stage sees: unrevealed samples have no digits yet
            value = torch.where(revealed > 0, value, 0)
        lo = hi = None
        if known is not None:
            lo_np, hi_np = intervals.linear(value.numpy(), known)
            lo, hi = torch.from_numpy(lo_np), torch.from_numpy(hi_np)
        with torch.no_grad():
            want = old(value, revealed, st, t_frac, lo, hi)
            torch.testing.assert_close(new(value, revealed, st, t_frac, lo, hi), want)
    with pytest.raises(ValueError):
        widen_inputs(build_model(tiny_config(features="plain")).state_dict(), new)
