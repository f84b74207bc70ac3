"""One benchmark per (pairing, method, k, mode) of the pairings file, controls first, then the
feature cells (specgate.matrix.features).

Each runs the pairing's prompt set through its engine under pytest-benchmark's timer, attaches
every metric to ``benchmark.extra_info``, fails on broken invariants (specgate.gate.sanity) and on
in-run correctness (specgate.gate.correctness: tokens equal the control's at temperature 0,
speculation happened; specgate.matrix.features for feature cells), then judges the run against its
baselines (specgate.gate.judge). A regression fails with the reason; a condition with no comparable
baseline skips with the reason, or fails under --specgate-strict; ``--specgate-update-baselines``
records the run instead. A feature cell vLLM refuses is "unsupported" (skipped, with vLLM's
reason, when the baseline says so too); one a known vLLM defect breaks is an expected failure.
All of it is specgate.harness.fixture.SpecgateBenchmark, the ``specgate_benchmark`` fixture.
"""


def test_speculative(benchmark, specgate_benchmark):
    specgate_benchmark(benchmark)
