"""One benchmark per (pairing, method, k, mode) of the pairings file, controls first.

Each runs the pairing's prompt set through its engine once under pytest-benchmark's timer,
attaches every metric to ``benchmark.extra_info`` and fails on broken invariants
(specgate.sanity) or a pairing's acceptance floor.
"""

from specgate import sanity


def test_speculative(benchmark, spec_condition, spec_engine, spec_prompts, specgate_session):
    benchmark.group = spec_condition.pairing.target_name
    result = benchmark.pedantic(spec_engine.run, args=(spec_prompts, spec_condition), rounds=1, iterations=1)
    metrics = specgate_session.record(spec_condition, result)
    benchmark.extra_info.update({"condition": spec_condition.id, "method": spec_condition.method,
                                 **metrics.as_dict(), "counters": result.counters.__dict__})
    found = sanity.problems(spec_condition, result, metrics)
    assert not found, f"{spec_condition.id}: " + "; ".join(found)
