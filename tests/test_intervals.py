"""Known intervals: G.711 bins against libsndfile and sox, linear depths against the top-bit masks."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from upscale_audio import ardm, intervals


@pytest.mark.parametrize("law", intervals.LAWS)
def test_g711_bins_hold_libsndfiles_decoding_of_every_code(law: str) -> None:
    lo, hi = intervals.g711_bins(law)
    dec = intervals.decoded(law)
    inside = (dec >= lo) & (dec < hi)
    # mu-law's two full-scale codes decode to +-32124 but the encoders clip into them from further out:
    # every other code's decoded level lies inside its bin
    assert inside.sum() >= 255
    assert np.all(hi > lo)
    widths = hi - lo
    assert widths.min() >= 2 and 900 < widths.max() < 1200  # a few units near zero, ~1000 at full scale


@pytest.mark.parametrize("law", intervals.LAWS)
def test_any_value_in_a_bin_re_encodes_to_its_code_with_libsndfile_and_sox(law: str) -> None:
    lo, hi = intervals.g711_bins(law)
    lsf, sox = intervals.libsndfile_codes(law), intervals.sox_codes(law)
    for c in range(256):
        if law == "ulaw" and c == 0x7F:  # sox never writes mu-law's negative zero
            assert np.all(lsf[lo[c] : hi[c]] == c)
            continue
        assert np.all(lsf[lo[c] : hi[c]] == c) and np.all(sox[lo[c] : hi[c]] == c), c


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
@pytest.mark.parametrize("law,encoding", [("ulaw", "mu-law"), ("alaw", "a-law")])
def test_the_sox_encoder_twin_equals_sox(tmp_path: Path, law: str, encoding: str) -> None:
    ramp = tmp_path / "ramp.wav"
    sf.write(ramp, np.arange(-32768, 32768, dtype=np.int16), 8000, subtype="PCM_16")
    raw = tmp_path / "r.raw"
    subprocess.run(["sox", "-D", str(ramp), "-e", encoding, "-t", "raw", str(raw)], check=True,
                   stderr=subprocess.DEVNULL)
    np.testing.assert_array_equal(np.fromfile(raw, dtype=np.uint8), intervals.sox_codes(law))


@pytest.mark.parametrize("law", intervals.LAWS)
def test_decoded_values_map_back_to_their_codes(law: str) -> None:
    codes = np.arange(256, dtype=np.uint8)
    dec = intervals.decoded(law)
    back = intervals.decoded_to_codes(dec, law)
    # mu-law has two codes for zero (0x7F and 0xFF): both decode to 0, either code is the same level
    np.testing.assert_array_equal(intervals.decoded(law)[back], dec)
    assert np.mean(back == codes) >= 255 / 256
    with pytest.raises(ValueError):
        intervals.decoded_to_codes(dec + 1, law)


def test_scoring_bins_partition_the_16_bit_range() -> None:
    u = np.arange(65536)
    for law in intervals.LAWS:
        lo, hi = intervals.g711_of_u(u, law)
        assert np.all((u >= lo) & (u < hi))
        buf = io.BytesIO()
        sf.write(buf, (u - 32768).astype(np.int16), 8000, subtype=law.upper(), format="RAW")
        np.testing.assert_array_equal(np.frombuffer(buf.getvalue(), np.uint8), intervals.g711_encode(u, law))


@pytest.mark.parametrize("schedule", [(8, 8), (2,) * 8, (8, 2, 2, 2, 2), (4,) * 4, (16,)])
def test_linear_interval_masks_equal_the_top_bit_masks_for_every_depth(schedule) -> None:  # type: ignore[no-untyped-def]
    """The allowed digits of an aligned interval: the digit's bits above the known depth fixed, the
    rest free (the top-bits rule, written out independently)."""
    maps = ardm.StageMaps(schedule)
    u = np.random.default_rng(0).integers(0, 65536, 300)
    for known in range(0, 16):
        lo, hi = intervals.linear(u, known)
        for s in range(maps.S):
            w, low = schedule[s], maps.lows[s]
            free = w - int(np.clip(known - (16 - low - w), 0, w))  # digit bits not known
            prefix = ((u >> low) & ((1 << w) - 1)) >> free
            want_lo, want_hi = prefix << free, (prefix + 1) << free
            dlo, dhi = maps.allowed_digits(torch.from_numpy(u)[None], torch.from_numpy(lo)[None],
                                           torch.from_numpy(hi)[None], torch.tensor([s]))
            np.testing.assert_array_equal(dlo[0].numpy(), want_lo)
            np.testing.assert_array_equal(dhi[0].numpy(), want_hi)


def test_allowed_digits_of_a_g711_interval_are_exactly_those_meeting_it() -> None:
    maps = ardm.StageMaps((8, 8))
    u = np.random.default_rng(1).integers(0, 65536, 2000)
    lo, hi = intervals.g711(intervals.g711_encode(u, "ulaw"), "ulaw")
    t = [torch.from_numpy(x)[None] for x in (u, lo, hi)]
    for s in (0, 1):
        dlo, dhi = maps.allowed_digits(t[0], t[1], t[2], torch.tensor([s]))
        low = maps.lows[s]
        past = (u >> (low + 8)) << (low + 8)
        d = np.arange(256)[None]
        meets = (past[:, None] + ((d + 1) << low) > lo[:, None]) & (past[:, None] + (d << low) < hi[:, None])
        np.testing.assert_array_equal(dlo[0].numpy(), meets.argmax(1))
        np.testing.assert_array_equal(dhi[0].numpy(), 256 - meets[:, ::-1].argmax(1))


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_edge_shares_count_the_values_of_each_edge_digit_inside_the_bin(law: str) -> None:
    """StageMaps.edge_shares, numpy and torch alike: the share of the lowest and the highest allowed
    digit whose values the G.711 bin holds, counted value by value; 1 for every linear depth
    wherever more than one digit is open."""
    maps = ardm.StageMaps((8, 8))
    u = np.random.default_rng(2).integers(0, 65536, 3000)
    lo, hi = intervals.g711_of_u(u, law)  # the bins that hold u (the digits above a stage are u's)
    for s in (0, 1):
        low = maps.lows[s]
        dlo, dhi = maps.allowed_digits(u[None], lo[None], hi[None], np.array([s]))
        got = maps.edge_shares(u[None], lo[None], hi[None], np.array([s]), dlo, dhi)
        got_t = maps.allowed(*(torch.from_numpy(x)[None] for x in (u, lo, hi)), torch.tensor([s]))[2:]
        past = (u >> (low + 8)) << (low + 8)
        for k, d in enumerate((dlo[0], dhi[0] - 1)):
            first = past + (d << low)
            values = [np.arange(f, f + (1 << low)) for f in first]
            inside = np.array([np.count_nonzero((v >= a) & (v < b)) for v, a, b in zip(values, lo, hi)])
            np.testing.assert_allclose(got[k][0], inside / (1 << low), rtol=0, atol=1e-12)
            np.testing.assert_allclose(got_t[k][0].numpy(), inside / (1 << low), rtol=0, atol=1e-6)
        if s == 0:  # mu-law and A-law bins of more than a few values straddle high bytes: real cuts
            assert np.mean(got[0][0] < 1) > 0.2
    for known in range(17):
        lo, hi = intervals.linear(u, known)
        for s in (0, 1):
            dlo, dhi = maps.allowed_digits(u[None], lo[None], hi[None], np.array([s]))
            open_ = dhi - dlo > 1  # a single allowed digit has probability 1 whatever its share
            for share in maps.edge_shares(u[None], lo[None], hi[None], np.array([s]), dlo, dhi):
                assert np.all(share[open_] == 1.0)
