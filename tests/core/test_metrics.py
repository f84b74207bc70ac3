"""Metric formulas against counts worked out by hand."""

import pytest

from specgate.core import metrics
from specgate.core.results import RequestRecord, RunResult, SpecCounters

# 10 verification steps at k=3 (T=30): 4 steps accepted all 3, 3 accepted 2, 2 accepted 1, 1 accepted 0.
# A = 4*3 + 3*2 + 2*1 = 20; accepted at position 1: 9 steps, position 2: 7, position 3: 4.
HIST = [1, 2, 3, 4]
C = SpecCounters(drafts=10, draft_tokens=30, accepted=20, accepted_per_pos=(9, 7, 4))


def test_histogram_conversion_matches_hand_count():
    assert SpecCounters.from_histogram(HIST, 30) == C


def test_acceptance_rate_is_accepted_over_drafted():
    assert metrics.acceptance_rate(C) == pytest.approx(20 / 30)


def test_mean_acceptance_length_counts_the_bonus_token():
    assert metrics.mean_acceptance_length(C) == pytest.approx(3.0)  # (20 accepted + 10 bonus) / 10 steps


def test_system_efficiency_against_a_perfect_proposer():
    # A perfect proposer emits k + 1 = 4 tokens per step: 40 in all; we emitted 30.
    assert metrics.system_efficiency(C, 3) == pytest.approx(0.75)


def test_per_position_acceptance():
    assert metrics.per_position_acceptance(C) == pytest.approx((0.9, 0.7, 0.4))


def test_metrics_of_no_speculation_are_absent_not_zero():
    empty = SpecCounters()
    assert metrics.acceptance_rate(empty) is None
    assert metrics.mean_acceptance_length(empty) is None
    assert metrics.system_efficiency(empty, 3) is None
    assert metrics.per_position_acceptance(empty) == ()


def test_counter_difference_pads_positions():
    before = SpecCounters(2, 6, 3, (2, 1))
    after = SpecCounters(12, 36, 23, (11, 8, 4))
    assert after - before == SpecCounters(10, 30, 20, (9, 7, 4))
    assert before + (after - before) == SpecCounters(12, 36, 23, (11, 8, 4, ))


def run(latencies, tokens, wall, counters=SpecCounters(), k=3, spec=None):
    reqs = tuple(RequestRecord(10, t, lat, spec) for lat, t in zip(latencies, tokens))
    return RunResult("x", "sequential", k, wall, reqs, counters)


def test_latency_throughput_and_speedup():
    spec = run([1.0, 2.0, 3.0, 4.0], [50, 50, 50, 50], wall=10.0, counters=C)
    control = run([2.0] * 4, [50] * 4, wall=16.0, k=0)
    m = metrics.summarize(spec, control)
    assert m.latency_mean_s == pytest.approx(2.5)
    assert m.latency_p50_s == pytest.approx(2.5)
    assert m.latency_p90_s == pytest.approx(3.7)  # numpy-style interpolation between 3.0 and 4.0
    assert m.time_per_output_token_ms == pytest.approx(50.0)  # mean of 20, 40, 60, 80 ms
    assert m.tokens_per_s == pytest.approx(20.0)
    assert m.speedup == pytest.approx(20.0 / 12.5)
    assert m.output_tokens == 200
    assert m.acceptance_rate == pytest.approx(2 / 3)


def test_speedup_comes_from_the_control_timed_beside_each_request_when_there_is_one():
    import dataclasses

    spec = run([1.0, 2.0], [50, 50], wall=3.0, counters=C)
    control = run([2.0, 2.0], [50, 50], wall=8.0, k=0)  # its own run: a slower moment of the machine
    assert metrics.summarize(spec, control).speedup == pytest.approx(8.0 / 3.0)
    beside = dataclasses.replace(spec, requests=tuple(dataclasses.replace(r, control_latency_s=c)
                                                      for r, c in zip(spec.requests, (1.5, 3.0))))
    assert metrics.summarize(beside, control).speedup == pytest.approx(4.5 / 3.0)


def test_batch_runs_without_request_latencies_still_give_throughput():
    m = metrics.summarize(run([None, None], [8, 8], wall=2.0))
    assert m.latency_mean_s is None and m.time_per_output_token_ms is None
    assert m.tokens_per_s == pytest.approx(8.0)
    assert m.speedup is None


def test_per_request_counts_sum_and_missing_counts_give_none():
    a = SpecCounters.from_histogram([1, 2, 0, 0], 9)
    b = SpecCounters.from_histogram([0, 0, 1, 1], 6)
    assert metrics.request_counter_total(run([1, 1], [5, 5], 1, spec=a)) == a + a
    mixed = RunResult("x", "sequential", 3, 1.0, (RequestRecord(1, 1, 1.0, a), RequestRecord(1, 1, 1.0, None)))
    assert metrics.request_counter_total(mixed) is None
    assert (a + b).accepted == 2 + 2 + 3


def test_run_result_round_trips_through_json_dict():
    r = run([1.0, None], [3, 4], wall=2.0, counters=C, spec=C)
    assert RunResult.from_dict(r.to_dict()) == r


def test_rounds_combine_to_median_latency_and_first_round_counts():
    from specgate.core.results import combine_rounds

    rounds = [run([1.0, 4.0], [5, 5], wall=5.0, counters=C), run([3.0, 2.0], [5, 5], wall=5.5),
              run([2.0, 9.0], [5, 5], wall=11.0)]
    merged = combine_rounds(rounds)
    assert [r.latency_s for r in merged.requests] == [2.0, 4.0]
    assert merged.wall_s == 5.5 and merged.counters == C
    assert combine_rounds(rounds[:2]).requests[0].latency_s == 2.0  # even count: mean of the middle two
