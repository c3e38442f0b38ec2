"""The one bit geometry (``ardm.StageMaps`` on ``bits``' schedule arithmetic), checked by brute
force on every 16-bit value, and the keyed uniforms against their numpy twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upscale_audio import ardm, bits

SCHEDULES = [[2] * 8, [4] * 4, [8, 8], [8, 2, 2, 2, 2], [1] * 16, [16], [3, 5, 8]]
ALL = np.arange(65536, dtype=np.int64)


def _bit_string_digits(u: int, schedule: list[int]) -> list[int]:
    """Digits by slicing the 16-character binary string: an independent definition."""
    s, out, i = format(u, "016b"), [], 0
    for w in schedule:
        out.append(int(s[i : i + w], 2))
        i += w
    return out


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_digits_past_and_future_of_every_value_by_brute_force(schedule: list[int]) -> None:
    maps = ardm.StageMaps(schedule)
    assert maps.lows == [16 - sum(schedule[: k + 1]) for k in range(len(schedule))]
    sample = ALL[::97]
    want = np.array([_bit_string_digits(int(u), schedule) for u in sample])  # [N, S]
    for k in range(maps.S):
        np.testing.assert_array_equal(maps.digit(sample, k), want[:, k])
        past, future, target = maps.split(torch.from_numpy(ALL)[None], torch.tensor([k]))
        np.testing.assert_array_equal(target[0].numpy(), maps.digit(ALL, k))
        # x_past keeps the digits above stage k, x_future also stage k's: rebuilt from the digits
        rebuild = [sum(int(want[i, j]) << maps.lows[j] for j in range(k)) for i in range(len(sample))]
        np.testing.assert_array_equal(past[0].numpy()[::97], rebuild)
        np.testing.assert_array_equal(future[0].numpy()[::97], np.array(rebuild) + (want[:, k] << maps.lows[k]))


def test_stages_against_the_papers_integer_division() -> None:
    maps = ardm.StageMaps([2] * 8)
    u = torch.from_numpy(np.arange(0, 65536, 7))[None]
    for k in range(8):  # branch factor 4: x_past = (x // b**(r+1)) * b**(r+1), r = S-1-k
        r = 8 - 1 - k
        past, future, target = maps.split(u, torch.tensor([k]))
        np.testing.assert_array_equal(past[0].numpy(), (u[0].numpy() // 4 ** (r + 1)) * 4 ** (r + 1))
        np.testing.assert_array_equal(future[0].numpy(), (u[0].numpy() // 4**r) * 4**r)
        np.testing.assert_array_equal(target[0].numpy(), (future[0].numpy() // 4**r) % 4)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_allowed_digits_are_exactly_those_whose_values_meet_the_interval(schedule: list[int]) -> None:
    """For random intervals (aligned or not) and values inside them, a digit is allowed iff some
    value with the digits above and this digit lies in [lo, hi): every digit checked."""
    maps = ardm.StageMaps(schedule)
    rng = np.random.default_rng(len(schedule))
    a, b = rng.integers(0, 65536, 200), rng.integers(0, 65536, 200)
    lo, hi = np.minimum(a, b), np.maximum(a, b) + 1
    u = lo + (rng.random(200) * (hi - lo)).astype(np.int64)
    t = [torch.from_numpy(x)[None] for x in (u, lo, hi)]
    for k in range(maps.S):
        dlo, dhi = maps.allowed_digits(t[0], t[1], t[2], torch.tensor([k]))
        low, w = maps.lows[k], schedule[k]
        for i in range(0, 200, 7):
            past = (int(u[i]) >> (low + w)) << (low + w)
            values = (past + np.arange(1 << (low + w))).reshape(1 << w, 1 << low)  # every value, by digit
            ok = ((values >= lo[i]) & (values < hi[i])).any(1)
            allowed = (np.arange(1 << w) >= int(dlo[0, i])) & (np.arange(1 << w) < int(dhi[0, i]))
            np.testing.assert_array_equal(allowed, ok)
            assert ok[maps.digit(u[i], k)]  # the true digit is always allowed


def test_open_stages_are_those_with_more_than_one_allowed_value() -> None:
    maps = ardm.StageMaps([8, 4, 4])
    lo = torch.tensor([[0x1200, 0x1230]])
    hi = torch.tensor([[0x1300, 0x1240]])
    assert maps.open_stages(lo, hi, range(3)) == [1, 2]  # the top byte is known everywhere
    assert maps.open_stages(lo[:, 1:], hi[:, 1:], range(3)) == [2]
    assert maps.open_stages(torch.tensor([[5]]), torch.tensor([[6]]), range(3)) == []


def test_keyed_uniform_is_splitmix64_and_uniform() -> None:
    idx = np.arange(200_000, dtype=np.uint64)
    a = bits.keyed_uniform(12345, idx)
    assert 0 <= a.min() and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.005 and abs(a.var() - 1 / 12) < 0.002
    assert not np.array_equal(a[:100], bits.keyed_uniform(12346, idx[:100]))
    np.testing.assert_array_equal(bits.keyed_uniform(7, idx[50:60]), bits.keyed_uniform(7, idx)[50:60])

    def splitmix(key: int, i: int) -> float:  # the reference, in Python integers
        m = (1 << 64) - 1
        z = (key * 0x9E3779B97F4A7C15 + i) & m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return ((z ^ (z >> 31)) >> 11) / (1 << 53)

    assert [splitmix(12345, i) for i in (0, 1, 99_999)] == list(a[[0, 1, 99_999]])


def test_schedule_arithmetic() -> None:
    assert list(bits.stage_lows([8, 2, 2, 2, 2])) == [8, 6, 4, 2, 0]
    assert [bits.stage_of_bit([8, 4, 4], k) for k in (0, 7, 8, 11, 12, 15)] == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="sum"):
        bits.check_schedule([8, 4])
    with pytest.raises(ValueError, match="sum"):
        ardm.StageMaps([8, 0, 8])
