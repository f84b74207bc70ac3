"""One benchmark per (pairing, method, k, mode) of the pairings file, controls first.

Each runs the pairing's prompt set through its engine under pytest-benchmark's timer, attaches
every metric to ``benchmark.extra_info``, fails on broken invariants (specgate.sanity) and on
in-run correctness (specgate.correctness: tokens equal the control's at temperature 0,
speculation happened), then judges the run against its baselines (specgate.gate). A
regression fails with the reason; a condition with no comparable baseline skips with the
reason, or fails under --specgate-strict; ``--specgate-update-baselines`` records the run instead.
"""

import pytest

from specgate import sanity
from specgate.baselines import BaselineError


def test_speculative(benchmark, spec_condition, spec_engine, spec_prompts, specgate_session):
    benchmark.group = spec_condition.pairing.target_name
    beside = {"paired": specgate_session.paired_control(spec_condition),
              "reference": specgate_session.pool.machine_reference(spec_condition)}
    result = benchmark.pedantic(spec_engine.run, args=(spec_prompts, spec_condition), kwargs=beside,
                                rounds=1, iterations=1)
    metrics = specgate_session.record(spec_condition, result)
    benchmark.extra_info.update({"condition": spec_condition.id, "method": spec_condition.method,
                                 **metrics.as_dict(), "counters": result.counters.__dict__})
    found = sanity.problems(spec_condition, result, metrics)
    assert not found, f"{spec_condition.id}: " + "; ".join(found)
    llm = getattr(spec_engine, "llm", None)
    decode = llm.get_tokenizer().decode if llm is not None else None
    try:
        verdict = specgate_session.judge(spec_condition, result, metrics, spec_prompts, decode)
    except BaselineError as exc:
        pytest.fail(str(exc), pytrace=False)
    benchmark.extra_info["verdict"] = verdict.status
    if verdict.status == "no-baseline":
        if specgate_session.config.getoption("--specgate-strict"):
            pytest.fail(f"{spec_condition.id}: no comparable baseline (--specgate-strict): {verdict.reason}",
                        pytrace=False)
        pytest.skip(verdict.reason)
    if verdict.status == "fail":
        pytest.fail(f"{spec_condition.id}: {verdict.reason}", pytrace=False)
