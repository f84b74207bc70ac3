"""One benchmark per (pairing, method, k, mode) of the pairings file, controls first.

Each runs the pairing's prompt set through its engine once under pytest-benchmark's timer,
attaches every metric to ``benchmark.extra_info``, fails on broken invariants
(specgate.sanity), then judges the run against its baseline (specgate.verdict): a regression
fails with the reason, a missing or incomparable baseline skips with the reason, and
``--update-baselines`` records the run instead.
"""

import pytest

from specgate import sanity
from specgate.baselines import BaselineError


def test_speculative(benchmark, spec_condition, spec_engine, spec_prompts, specgate_session):
    benchmark.group = spec_condition.pairing.target_name
    result = benchmark.pedantic(spec_engine.run, args=(spec_prompts, spec_condition), rounds=1, iterations=1)
    metrics = specgate_session.record(spec_condition, result)
    benchmark.extra_info.update({"condition": spec_condition.id, "method": spec_condition.method,
                                 **metrics.as_dict(), "counters": result.counters.__dict__})
    found = sanity.problems(spec_condition, result, metrics)
    assert not found, f"{spec_condition.id}: " + "; ".join(found)
    try:
        verdict = specgate_session.judge(spec_condition, result, metrics)
    except BaselineError as exc:
        pytest.fail(str(exc), pytrace=False)
    benchmark.extra_info["verdict"] = verdict.status
    if verdict.status == "no-baseline":
        pytest.skip(verdict.reason)
    if verdict.status == "fail":
        pytest.fail(f"{spec_condition.id}: regression: {verdict.reason}", pytrace=False)
