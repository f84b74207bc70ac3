"""Shared cases and exact checks for the distribution tests.

A case is a Block built from target and draft logits under one set of sampling parameters;
the checks compare what a sampler's rules give, computed exactly, with the target.
"""

from __future__ import annotations

import torch

from specgate.lossless import sampling
from specgate.lossless.cases import KINDS, Case  # noqa: F401 - the tests import them from here
from specgate.lossless.sampling import Block, SpeculativeSampler

ATOL = 1e-9


def check_first_token(sampler: SpeculativeSampler, block: Block) -> None:
    got = sampling.first_token_distribution(block, sampler)
    assert torch.allclose(got, block.p[0], atol=ATOL), f"first token {got.tolist()} != p_1 {block.p[0].tolist()}"


def check_expected_accepted(sampler: SpeculativeSampler, block: Block) -> None:
    got = sampling.expected_accepted(block, sampler)
    want = sampling.expected_accepted_formula(block.p, block.q)
    assert abs(got - want) < ATOL, f"E[accepted] {got} != sum_i prod_l sum min(p_l, q_l) = {want}"


def check_stream(sampler: SpeculativeSampler, block: Block, k: int) -> None:
    """The first k+1 generated tokens (blocks repeated as needed) have the target's joint distribution."""
    p = block.p
    q = torch.cat([block.q, block.q[-1:]], 0)  # a draft distribution for every position
    got = sampling.stream_distribution(p, q, k, sampler)
    want = sampling.product_distribution(p)
    worst = max(abs(got.get(s, 0.0) - want.get(s, 0.0)) for s in set(got) | set(want))
    assert worst < ATOL, f"joint of the first {p.shape[0]} tokens differs from the target's by {worst:.3g}"


def check_all(sampler: SpeculativeSampler, case: Case) -> None:
    block = case.block()
    check_first_token(sampler, block)
    check_expected_accepted(sampler, block)
    if case.vocab ** (case.k + 1) <= 4096:
        check_stream(sampler, block, case.k)
