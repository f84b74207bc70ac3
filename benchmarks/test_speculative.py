"""One benchmark per (pairing, method, k, mode) of the pairings file, controls first, then the
feature cells (specgate.features).

Each runs the pairing's prompt set through its engine under pytest-benchmark's timer, attaches
every metric to ``benchmark.extra_info``, fails on broken invariants (specgate.sanity) and on
in-run correctness (specgate.correctness: tokens equal the control's at temperature 0,
speculation happened; specgate.features for feature cells), then judges the run against its
baselines (specgate.gate). A regression fails with the reason; a condition with no comparable
baseline skips with the reason, or fails under --specgate-strict; ``--specgate-update-baselines``
records the run instead. A feature cell vLLM refuses is "unsupported" (skipped, with vLLM's
reason, when the baseline says so too); one a known vLLM defect breaks is an expected failure.
"""

import pytest

from specgate import sanity
from specgate.baselines import BaselineError
from specgate.engine import EngineError
from specgate.session import Refused


def test_speculative(benchmark, spec_condition, spec_engine, spec_prompts, specgate_session):
    benchmark.group = spec_condition.pairing.target_name
    if isinstance(spec_engine, Refused):
        return conclude(specgate_session, spec_condition, lambda: specgate_session.judge_refused(
            spec_condition, spec_engine.reason))
    beside = {"paired": specgate_session.paired_control(spec_condition),
              "reference": specgate_session.pool.machine_reference(spec_condition)}
    try:
        result = benchmark.pedantic(spec_engine.run, args=(spec_prompts, spec_condition), kwargs=beside,
                                    rounds=1, iterations=1)
    except EngineError as exc:
        if spec_condition.feature and exc.refused:
            return conclude(specgate_session, spec_condition,
                            lambda: specgate_session.judge_refused(spec_condition, str(exc)))
        raise
    metrics = specgate_session.record(spec_condition, result)
    benchmark.extra_info.update({"condition": spec_condition.id, "method": spec_condition.method,
                                 **metrics.as_dict(), "counters": result.counters.__dict__})
    found = sanity.problems(spec_condition, result, metrics)
    assert not found, f"{spec_condition.id}: " + "; ".join(found)
    llm = getattr(spec_engine, "llm", None)
    decode = None
    if llm is not None:
        tokenizer = llm.get_tokenizer()
        decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    again = None
    if spec_condition.feature_setting.output_check == "reproducible":
        again = spec_engine.run(spec_prompts, spec_condition)
    verdict = conclude(specgate_session, spec_condition, lambda: specgate_session.judge(
        spec_condition, result, metrics, spec_prompts, decode, again))
    benchmark.extra_info["verdict"] = verdict.status


def conclude(session, condition, judge):
    """Judge, then turn the verdict into the test's outcome."""
    try:
        verdict = judge()
    except BaselineError as exc:
        pytest.fail(str(exc), pytrace=False)
    if verdict.status == "no-baseline":
        if session.config.getoption("--specgate-strict"):
            pytest.fail(f"{condition.id}: no comparable baseline (--specgate-strict): {verdict.reason}",
                        pytrace=False)
        pytest.skip(verdict.reason)
    if verdict.status == "fail":
        pytest.fail(f"{condition.id}: {verdict.reason}", pytrace=False)
    if verdict.status == "unsupported":
        pytest.skip(f"unsupported: {verdict.reason}")
    if verdict.status == "known-defect":
        pytest.xfail(verdict.reason)
    return verdict
