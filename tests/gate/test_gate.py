"""The verdict of one condition against portable and timing records (pure, hand-made runs)."""

import dataclasses

import numpy as np

from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.gate import judge, verdict
from specgate.records import baselines

ENV = {"hardware": "cpu-a-2c", "vllm": "0.32.0", "torch": "2.13.0"}
FACTS = {"temperature": 0.0, "k": 2}


def run(accepted=(5, 6, 7, 4), latency=0.2, control=0.2, tokens=None, drafts=4):
    reqs = tuple(RequestRecord(3, 8, latency * (1 + i / 10), SpecCounters(drafts, 2 * drafts, a, (min(a, drafts), a - min(a, drafts))),
                               tuple(tokens[i]) if tokens else (1, 2, 3, i), control * (1 + i / 10))
                 for i, a in enumerate(accepted))
    return RunResult("x", "sequential", 2, 1.0, reqs)


def records(base: RunResult, env=ENV):
    d = base.to_dict()
    return (baselines.portable_record(FACTS, env, {}, d), baselines.timing_record(FACTS, env, {}, d, None))


def verdict_of(new, base_run=None, env=ENV, base_env=ENV):
    p, t = records(base_run or run(), base_env)
    return judge.judge_condition(judge.Evidence(new, new, (p, ""), (t, ""), ["a", "b", "c", "d"]), env, {})


def test_unchanged_passes_with_every_check_and_notes():
    v = verdict_of(run())
    assert v.status == "pass", v.reason
    assert {"acceptance_rate", "drafts_per_token", "acceptance_counts", "tokens", "latency_vs_control"} <= \
        {c.metric for c in v.checks}
    assert v.notes[0].startswith("acceptance/tokens judged exactly, request by request (temperature 0, same hardware) "
                                 "against the portable record from cpu-a-2c")


def one_accepted_token_less(base: RunResult, request: int) -> RunResult:
    """The same tokens; one request's second draft position accepted once less (A and a_2 move)."""
    r = base.requests[request]
    s = r.spec
    moved = SpecCounters(s.drafts, s.draft_tokens, s.accepted - 1, (s.accepted_per_pos[0], s.accepted_per_pos[1] - 1))
    return dataclasses.replace(base, requests=tuple(dataclasses.replace(q, spec=moved) if i == request else q
                                                    for i, q in enumerate(base.requests)))


def test_one_count_moved_in_one_request_fails_exactly_on_the_recording_hardware():
    base = run(accepted=(50, 60, 70, 40), drafts=40)
    new = one_accepted_token_less(base, 2)
    v = verdict_of(new, base_run=base)
    assert v.status == "fail", v.reason
    assert [c.metric for c in v.failures] == ["acceptance_counts"], v.reason  # 1 of 220 accepted: far under 3%
    assert "1 of 4 requests" in v.reason and "prompt c, accepted 70 -> 69, position 2 accepted 30 -> 29)" in v.reason


def test_elsewhere_and_above_temperature_0_the_tolerance_applies_alone():
    base = run(accepted=(50, 60, 70, 40), drafts=40)
    new = one_accepted_token_less(base, 2)
    elsewhere = verdict_of(new, base_run=base, env={**ENV, "hardware": "cpu-b-2c"})
    assert elsewhere.status == "pass" and "acceptance_counts" not in {c.metric for c in elsewhere.checks}
    assert "within 3% (another hardware tag or temperature > 0)" in elsewhere.notes[0]
    p, t = records(base)
    p["conditions"]["temperature"] = 0.8
    sampled = judge.judge_condition(judge.Evidence(new, new, (p, ""), (t, ""), ["a", "b", "c", "d"]), ENV, {})
    assert sampled.status == "pass" and "acceptance_counts" not in {c.metric for c in sampled.checks}


def test_acceptance_rise_at_temperature_0_fails_and_says_how_to_re_record():
    v = verdict_of(run(accepted=(7, 8, 8, 6)))
    assert v.status == "fail" and "acceptance_rate rose" in v.reason and "re-record" in v.reason


def test_changed_tokens_fail_on_the_recording_hardware_and_are_tolerated_elsewhere():
    other = run(tokens=[(1, 2, 3, 0), (9, 9, 9, 9), (1, 2, 3, 2), (1, 2, 3, 3)])
    assert verdict_of(other).status == "fail" and "1 of 4 requests emit other tokens" in verdict_of(other).reason
    assert verdict_of(other, env={**ENV, "hardware": "cpu-b-2c"}).status == "pass"  # 25% of 4 = 1 allowed


def test_a_slower_speculative_path_fails_and_machine_drift_does_not():
    assert verdict_of(run(latency=0.2 * 1.25)).status == "fail"  # 25% slower than its paired control
    assert verdict_of(run(latency=0.4, control=0.4)).status == "pass"  # the whole machine twice as slow


def test_the_version_delta_leads_the_reason_and_never_skips():
    v = verdict_of(run(accepted=(3, 3, 3, 3)), base_env={**ENV, "vllm": "0.31.0"})
    assert v.status == "fail" and v.reason.startswith("vLLM 0.31.0 -> 0.32.0: acceptance_rate fell")


def test_no_records_is_no_baseline_with_both_reasons():
    v = judge.judge_condition(judge.Evidence(run(), run(), (None, "no portable baseline"), (None, "no timing"), []), ENV, {})
    assert v.status == "no-baseline" and "no portable baseline" in v.reason and "no timing" in v.reason


def test_paired_ratio_detects_fifteen_percent_under_five_percent_noise():
    rng = np.random.default_rng(3)
    ctl = rng.uniform(0.1, 0.3, 32)
    base = (ctl * 0.9 * rng.lognormal(0, 0.05, 32), ctl)
    new = (ctl * 0.9 * 1.15 * rng.lognormal(0, 0.05, 32), ctl)
    check = verdict.paired_ratio_check(base, new, 0.10, 0.01, np.random.default_rng(0))
    assert not check.passed and 0.10 < check.change < 0.20


def control_run(latency, reference):
    reqs = tuple(RequestRecord(3, 8, latency * (1 + i / 10), None, (1, 2, i), None, reference * (1 + i / 10))
                 for i in range(4))
    return RunResult("c", "sequential", 0, 1.0, reqs)


def test_a_control_is_judged_against_its_machine_reference_not_its_own_past():
    base = control_run(0.1, 0.08)
    timing = baselines.timing_record(FACTS, ENV, {}, base.to_dict(), None)

    def judge_control(new):
        return judge.judge_condition(judge.Evidence(new, None, (None, "n/a"), (timing, ""), ["a", "b", "c", "d"]), ENV, {})

    loaded = judge_control(control_run(0.45, 0.36))  # a one-core load: both 4.5x slower
    assert loaded.status == "pass" and [c.metric for c in loaded.checks] == ["latency_vs_reference"]
    assert judge_control(control_run(0.1 * 1.8, 0.08)).status == "fail"  # vLLM alone 80% slower


def test_serving_acceptance_is_judged_on_the_runs_counters():
    """Over HTTP there are no per-request counts: the run's counters are compared as one sample."""
    from specgate.gate import judge
    from specgate.core.results import RequestRecord, RunResult, SpecCounters

    def run(accepted):
        return RunResult("s", "serving", 2, 1.0, (RequestRecord(3, 8, 0.1), RequestRecord(3, 8, 0.1)),
                         SpecCounters(10, 20, accepted, (accepted - accepted // 3, accepted // 3)))

    rec = {"conditions": {"temperature": 0.0}, "recorded": {"hardware": "h"},
           "requests": [{"spec": None, "output_tokens": 8}] * 2,
           "counters": {"drafts": 10, "draft_tokens": 20, "accepted": 12, "accepted_per_pos": [8, 4]}}
    same = judge.judge_portable(rec, run(12), {"hardware": "h"}, {"acceptance_rate": 0.03, "cross_hardware_tokens": 0.25},
                               ["a", "b"], np.random.default_rng(0))
    assert same and all(c.passed for c in same) and "acceptance_rate" in {c.metric for c in same}
    fell = judge.judge_portable(rec, run(9), {"hardware": "h"}, {"acceptance_rate": 0.03, "cross_hardware_tokens": 0.25},
                               ["a", "b"], np.random.default_rng(0))
    assert any(c.metric == "acceptance_rate" and not c.passed for c in fell)


def test_a_request_with_no_counts_recorded_is_judged_as_zero_and_a_control_is_not_called_exact():
    base = run(accepted=(50, 60, 70, 40), drafts=40)
    none = dataclasses.replace(base, requests=(dataclasses.replace(base.requests[0], spec=None),) + base.requests[1:])
    v = verdict_of(base, base_run=none)  # recorded without counts (it drafted nothing), drafts now
    assert v.status == "fail" and "prompt a, drafts 0 -> 40" in v.reason, v.reason
    assert verdict_of(none, base_run=none).status == "pass"
    control = dataclasses.replace(base, k=0, requests=tuple(dataclasses.replace(r, spec=None) for r in base.requests))
    c = verdict_of(control, base_run=control)
    assert "acceptance_counts" not in {x.metric for x in c.checks}
    assert "as recorded (no per-request acceptance counts here" in c.notes[0], c.notes


def test_a_record_in_which_speculation_never_reported_counts_fails_when_it_now_drafts():
    base = run(accepted=(50, 60, 70, 40), drafts=40)
    silent = dataclasses.replace(base, requests=tuple(dataclasses.replace(r, spec=None) for r in base.requests))
    v = verdict_of(base, base_run=silent)
    assert v.status == "fail" and "4 of 4 requests drafted or accepted other counts" in v.reason, v.reason
