"""Sampled outcomes of real samplers against the exact reference distribution (G-tests), on the
device vLLM runs on (its Triton kernels on a GPU, its C++ kernels on a CPU).

Samplers: specgate's batched reference, vLLM v1's rejection_sample (C++ kernels on CPU,
Triton on GPU) and transformers' _speculative_sampling. For each case, SAMPLES blocks are run
and the emitted token tuples compared with sampling.block_distribution, which the exact tests
show preserves the target distribution. Each G-test fails falsely with probability at most
ALPHA = 1e-6 (chi-square approximation, bins with expected count < 5 pooled); the whole
file's 21 tests together at most 2.1e-5. Seeds are fixed, so a run is repeatable.

Shipped in the package: ``pytest --pyargs specgate.suites.test_distribution`` checks the vLLM that
is installed (this repository's tests/lossless/test_distribution_sampling.py runs the same tests).
"""

import pytest
import torch

from specgate.lossless import sampling
from specgate.lossless.cases import Case
from specgate.lossless.stats import g_test

ALPHA = 1e-6
SAMPLES = 30_000
SAMPLING_CASES = [
    Case(seed=1, vocab=5, k=2),
    Case(seed=2, vocab=5, k=2, kind="greedy-draft"),
    Case(seed=3, vocab=6, k=2, top_k=3),
    Case(seed=4, vocab=4, k=3, kind="disjoint"),
    Case(seed=5, vocab=5, k=1, kind="near-zero", temperature=0.7, top_p=0.8),
    Case(seed=6, vocab=4, k=2, kind="identical"),
    Case(seed=7, vocab=3, k=4, temperature=1.5),
]


def sampled_outcomes(sampler, case: Case, samples: int = SAMPLES, seed: int = 0) -> list[tuple[int, ...]]:
    block = case.block()
    batch = sampling.Block(block.p.expand(samples, *block.p.shape), block.q.expand(samples, *block.q.shape),
                           None if block.q_model is None else block.q_model.expand(samples, *block.q_model.shape))
    tokens, accepted = sampler.sample(batch, torch.Generator().manual_seed(seed))
    return [tuple(row[: n + 1]) for row, n in zip(tokens.tolist(), accepted.tolist())]


def fit(sampler, case: Case):
    return g_test(sampled_outcomes(sampler, case), sampling.block_distribution(case.block()))


def _vllm():
    pytest.importorskip("vllm")
    from specgate.lossless.real_samplers import VllmRejectionSampler

    return VllmRejectionSampler()


def _hf():
    pytest.importorskip("transformers")
    from specgate.lossless.real_samplers import HfSpeculativeSampler

    return HfSpeculativeSampler()


SAMPLERS = {"reference": lambda: sampling.REFERENCE, "vllm": _vllm, "transformers": _hf}


@pytest.fixture(scope="module", params=list(SAMPLERS))
def sampler(request):
    return SAMPLERS[request.param]()


@pytest.mark.parametrize("case", SAMPLING_CASES, ids=lambda c: f"{c.kind}-V{c.vocab}-k{c.k}-T{c.temperature}"
                                                                 f"-topk{c.top_k}-topp{c.top_p}")
def test_distribution_sampler_outcomes_match_exact_distribution(sampler, case):
    result = fit(sampler, case)
    assert result.passes(ALPHA), f"{sampler.name} on {case}: {result.describe()}"
