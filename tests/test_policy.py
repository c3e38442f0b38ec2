from __future__ import annotations

import numpy as np
import pytest

from upscale_audio import policy

GOLD_KL = np.array([5, 4, 3, 2.85, 2.8])


def test_dp_reproduces_the_official_golden_costs() -> None:
    np.testing.assert_allclose(policy.dp_costs(GOLD_KL, 5), [25, 19, 18, 17.7, 17.65])
    for K, cost in zip(range(1, 6), [25, 19, 18, 17.7, 17.65]):
        starts, c = policy.dp_policy(GOLD_KL, K)
        assert c == pytest.approx(cost)
        assert starts[0] == 0 and len(starts) == K
        assert policy.policy_cost(GOLD_KL, starts) == pytest.approx(cost)


def test_numba_dp_equals_numpy_twin_on_random_losses() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        L = np.sort(rng.exponential(1.0, rng.integers(2, 40)))[::-1]
        K = int(rng.integers(1, len(L) + 1))
        a, ca = policy.dp_policy(L, K)
        b, cb = policy.dp_policy_np(L, K)
        assert ca == pytest.approx(cb)
        assert policy.policy_cost(L, a) == pytest.approx(policy.policy_cost(L, b))


def test_dp_is_optimal_against_brute_force() -> None:
    from itertools import combinations

    L = np.array([7.9, 6.0, 5.2, 4.1, 4.0, 3.2, 3.0, 2.9])
    for K in range(1, 6):
        best = min(policy.policy_cost(L, np.array((0,) + c)) for c in combinations(range(1, 8), K - 1))
        assert policy.dp_policy(L, K)[1] == pytest.approx(best)


def test_costs_fall_with_budget_and_never_beat_the_full_sum() -> None:
    L = np.linspace(8, 5, 64)
    costs = policy.dp_costs(L, 64)
    assert np.all(np.diff(costs) <= 1e-12)
    assert costs[-1] == pytest.approx(L.sum())
    assert np.all(costs >= L.sum() - 1e-9)
    naive = policy.policy_cost(L, policy.naive_starts(64, 4))
    assert costs[3] <= naive


def test_policy_fractions_apply_to_any_length() -> None:
    fr = policy.stage_policy(np.linspace(8, 5, 128), 4)
    assert fr[0] == 0 and np.all(np.diff(fr) > 0) and fr[-1] < 1
    q = policy.quantise(fr)
    assert q[0] == 0 and np.all(np.diff(q) > 0) and q[-1] < policy.POLICY_SCALE
    assert np.abs(policy.dequantise(q) - fr).max() <= 0.5 / policy.POLICY_SCALE
    np.testing.assert_allclose(policy.stage_policy(np.ones(8), 4, naive=True), [0, 0.25, 0.5, 0.75])
    assert len(policy.stage_policy(np.ones(8), 100)) == 100  # beyond the DP's resolution: equal split
