from __future__ import annotations

import numpy as np
import pytest

from upscale_audio import bits

SCHEDULES = [[2] * 8, [4] * 4, [8, 8], [8, 2, 2, 2, 2], [1] * 16, [16], [3, 5, 8]]
ALL = np.arange(65536, dtype=np.int64)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_split_merge_round_trips_every_value(schedule: list[int]) -> None:
    d = bits.split_digits(ALL, schedule)
    assert d.shape == (len(schedule), 65536)
    assert all(d[k].max() == (1 << w) - 1 and d[k].min() == 0 for k, w in enumerate(schedule))
    np.testing.assert_array_equal(bits.merge_digits(d, schedule), ALL)
    np.testing.assert_array_equal(d, bits.split_digits_np(ALL, schedule))
    np.testing.assert_array_equal(bits.merge_digits_np(d, schedule), ALL)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_stage_values_match_numpy_and_chain_back_to_u(schedule: list[int]) -> None:
    rng = np.random.default_rng(1)
    u = np.concatenate([rng.integers(0, 65536, 5000), [0, 1, 32767, 32768, 65534, 65535]])
    x = np.zeros_like(u)
    for k in range(len(schedule)):
        past, future, target = bits.stage_values(u, schedule, k)
        for a, b in zip((past, future, target), bits.stage_values_np(u, schedule, k)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(past, x)  # x_past of stage k is x_future of stage k-1
        low = bits.stage_lows(schedule)[k]
        x = past + (target << low)
        np.testing.assert_array_equal(x, future)
    np.testing.assert_array_equal(x, u)


def test_stage_values_against_the_papers_integer_division() -> None:
    u = np.arange(0, 65536, 7)
    for k in range(8):  # branch factor 4: x_past = (x // b**(r+1)) * b**(r+1), r = S-1-k
        r = 8 - 1 - k
        past, future, target = bits.stage_values(u, [2] * 8, k)
        np.testing.assert_array_equal(past, (u // 4 ** (r + 1)) * 4 ** (r + 1))
        np.testing.assert_array_equal(future, (u // 4**r) * 4**r)
        np.testing.assert_array_equal(target, (future // 4**r) % 4)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("known", [0, 1, 3, 7, 8, 9, 12, 15])
def test_allowed_range_holds_exactly_the_consistent_digits(schedule: list[int], known: int) -> None:
    rng = np.random.default_rng(known)
    u = rng.integers(0, 65536, 300)
    for k in range(len(schedule)):
        lo, hi = bits.allowed_digit_range(u, schedule, k, known)
        lo2, hi2 = bits.allowed_digit_range_np(u, schedule, k, known)
        np.testing.assert_array_equal(lo, lo2)
        np.testing.assert_array_equal(hi, hi2)
        # brute force: digit d is allowed iff setting it keeps the known top bits of u
        w, low = schedule[k], bits.stage_lows(schedule)[k]
        past = bits.stage_values(u, schedule, k)[0]
        for i in range(0, 300, 37):
            cand = past[i] + (np.arange(1 << w) << low)
            top = min(known, 16 - low)  # known bits that lie at or above this stage
            ok = bits.keep_top_bits(cand, top) == bits.keep_top_bits(u[i], top) if top else np.ones(1 << w, bool)
            mask = bits.allowed_digit_mask(lo[i : i + 1], hi[i : i + 1], w)[0]
            np.testing.assert_array_equal(mask, ok)


def test_significant_bits() -> None:
    rng = np.random.default_rng(0)
    for n in range(1, 17):
        u = bits.keep_top_bits(rng.integers(0, 65536, 1000), n) | (1 << (16 - n))
        assert bits.significant_bits(u) == n == bits.significant_bits_np(u)
    assert bits.significant_bits(np.full(10, 32768)) == 1  # digital silence
    assert bits.significant_bits(np.array([32768, 32769])) == 16


def test_keyed_uniform_numba_equals_numpy_and_is_uniform() -> None:
    idx = np.arange(200_000, dtype=np.uint64)
    a = bits.keyed_uniform(12345, idx)
    np.testing.assert_array_equal(a, bits.keyed_uniform_np(12345, idx))
    assert 0 <= a.min() and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.005 and abs(a.var() - 1 / 12) < 0.002
    assert not np.array_equal(a[:100], bits.keyed_uniform(12346, idx[:100]))
    np.testing.assert_array_equal(bits.keyed_uniform(7, idx[50:60]), bits.keyed_uniform(7, idx)[50:60])


def test_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="sum"):
        bits.split_digits(ALL[:4], [8, 4])
