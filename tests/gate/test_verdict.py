"""Regression verdicts on simulated runs with known effects.

Simulations use fixed seeds. Where a rate is asserted over many simulated reruns, the bound
and its false-failure probability are stated beside it.
"""

import numpy as np
import pytest

from run_vs_run import judge
from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.gate import verdict

K, DRAFTS = 3, 20  # verification steps per request


def spec_run(uniforms: np.ndarray, rates: np.ndarray, latency: np.ndarray, mode="sequential") -> RunResult:
    """Requests whose draft i is accepted when its uniform is below that request's rate (common
    random numbers, as vLLM's per-request seeds give: the same uniforms in both runs)."""
    requests = []
    for u, rate, lat in zip(uniforms, rates, latency):
        accepted = (u < rate).cumprod(axis=1)  # [steps, k]: stop at the first rejection
        per_pos = tuple(int(x) for x in accepted.sum(0))
        spec = SpecCounters(DRAFTS, DRAFTS * K, int(accepted.sum()), per_pos)
        requests.append(RequestRecord(20, 64, float(lat), spec))
    return RunResult("x", mode, K, float(latency.sum()), tuple(requests), SpecCounters())


def world(seed=0, n=32):
    rng = np.random.default_rng(seed)
    return rng.random((n, DRAFTS, K)), rng.uniform(0.5, 0.95, n), rng.uniform(0.5, 2.0, n)


def test_identical_runs_pass_with_zero_change():
    u, rates, lat = world()
    run = spec_run(u, rates, lat)
    v = judge(run, run)
    assert v.status == "pass"
    assert {c.metric for c in v.checks} >= {"acceptance_rate", "mean_acceptance_length", "acceptance_pos1", "latency"}
    assert all(c.change == 0 for c in v.checks)


def test_five_percent_acceptance_drop_is_flagged_with_a_readable_reason():
    u, rates, lat = world()
    # A 3% lower per-token acceptance compounds over k = 3 positions to about -5% acceptance rate.
    v = judge(spec_run(u, rates, lat), spec_run(u, rates * 0.97, lat))
    assert v.status == "fail"
    check = next(c for c in v.checks if c.metric == "acceptance_rate")
    assert -0.06 < check.change < -0.04 and not check.passed
    assert "acceptance_rate fell" in v.reason and "tolerance 3%" in v.reason and "interval of the change" in v.reason


def test_drop_within_tolerance_passes():
    u, rates, lat = world()
    v = judge(spec_run(u, rates, lat), spec_run(u, rates * 0.99, lat))
    assert v.status == "pass"


def test_fifteen_percent_latency_rise_is_flagged():
    u, rates, lat = world()
    noise = np.random.default_rng(5).lognormal(0.0, 0.05, len(lat))
    v = judge(spec_run(u, rates, lat), spec_run(u, rates, lat * 1.15 * noise))
    assert v.status == "fail" and [c.metric for c in v.failures] == ["latency"]
    assert "latency rose" in v.reason and "tolerance 10%" in v.reason


def test_unchanged_reruns_with_sampling_and_timing_noise_rarely_fail():
    """200 unchanged reruns with fresh random draws (temperature-1-like) and 5% timing noise.

    Each check's false-alarm probability is at most alpha = 1% (less with tolerances). Bound
    asserted: at most 8 of 200 fail; if the true rate were 1%, P(X >= 9) < 1e-3, and the
    seeds are fixed, so the outcome is the same on every run.
    """
    failures = 0
    for seed in range(200):
        u, rates, lat = world(seed)
        rng = np.random.default_rng(10_000 + seed)
        rerun = spec_run(rng.random(u.shape), rates, lat * rng.lognormal(0.0, 0.05, len(lat)))
        failures += judge(spec_run(u, rates, lat), rerun, seed=seed).status == "fail"
    assert failures <= 8


def test_per_pairing_tolerance_is_used():
    u, rates, lat = world()
    drop = spec_run(u, rates * 0.95, lat)
    # -5% per token is about -10% acceptance rate and -16% at position 3 (k = 3).
    assert judge(spec_run(u, rates, lat), drop, {"acceptance_rate": 0.10}).status == "fail"
    assert judge(spec_run(u, rates, lat), drop, {"acceptance_rate": 0.25}).status == "pass"


def test_different_request_counts_are_not_compared():
    u, rates, lat = world()
    v = judge(spec_run(u, rates, lat), spec_run(u[:5], rates[:5], lat[:5]))
    assert v.status == "no-baseline" and "32 requests" in v.reason


def test_zero_baseline_rate_cannot_regress():
    u, rates, lat = world()
    zero = spec_run(u, np.zeros_like(rates), lat)
    v = judge(zero, zero)
    assert v.status == "pass" and "no relative change" in v.checks[0].reason


@pytest.mark.parametrize("scale", [0.9, 0.8])
def test_larger_drops_fail_too(scale):
    u, rates, lat = world(3)
    assert judge(spec_run(u, rates, lat), spec_run(u, rates * scale, lat)).status == "fail"


def test_blocked_time_catches_a_sleep_and_ignores_a_slower_or_busier_machine():
    """The engine thread's blocked share, in points of wall time: a sleep of 10% of every step fails;
    a machine 30% slower everywhere, one where other processes kept the thread waiting for a CPU
    (runnable time is busy time), and a 1-point wobble do not."""
    rng = np.random.default_rng(0)
    wall = rng.uniform(0.1, 0.3, 32)
    busy = wall * 0.999
    check = lambda new_wall, new_busy: verdict.blocked_check((wall, busy), (new_wall, new_busy), 0.03, verdict.ALPHA,
                                                             np.random.default_rng(1))
    slept = check(wall * 1.1, busy)
    assert not slept.passed and 0.08 < slept.change < 0.10 and "sleeps or waits" in slept.reason
    assert check(wall * 1.3, busy * 1.3).passed
    assert check(wall * 2.0, busy * 2.0).passed  # half the time runnable behind another process: busy
    assert check(wall, busy * 0.99).passed
    assert check(wall * 0.9, busy * 0.9).change == pytest.approx(0.0, abs=1e-9)
