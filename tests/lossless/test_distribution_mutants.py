"""Proof that the distribution tests can fail: every planted bug is rejected, the reference is not."""

import pytest

from distribution_cases import Case, check_all
from samplers_with_bugs import MUTANTS
from specgate.lossless import sampling
from specgate.suites.test_distribution import ALPHA, SAMPLING_CASES, fit

# A fixed battery that covers every rule: plain, filtered (top-k, top-p), greedy drafts, k >= 2.
BATTERY = [
    Case(seed=11, vocab=4, k=1),
    Case(seed=12, vocab=3, k=2),
    Case(seed=13, vocab=5, k=2, top_k=2),
    Case(seed=14, vocab=4, k=2, kind="greedy-draft"),
    Case(seed=15, vocab=6, k=1, top_p=0.6),
    Case(seed=16, vocab=32, k=5, temperature=0.7),
]


def failures_exact(sampler) -> list[str]:
    found = []
    for case in BATTERY:
        try:
            check_all(sampler, case)
        except AssertionError as exc:
            found.append(f"{case}: {exc}")
    return found


def test_distribution_reference_passes_the_battery():
    assert failures_exact(sampling.REFERENCE) == []


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_distribution_exact_checks_reject_planted_bug(mutant):
    assert failures_exact(mutant), f"planted bug {mutant.name} passed every exact check"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_distribution_sampling_checks_reject_planted_bug(mutant):
    """The G-tests that judge vLLM's and transformers' samplers would also catch this bug."""
    rejected = [case for case in SAMPLING_CASES if not fit(mutant, case).passes(ALPHA)]
    assert rejected, f"planted bug {mutant.name} passed every G-test"
