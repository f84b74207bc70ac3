"""Shared cases and exact checks for the distribution tests.

A case is a Block built from target and draft logits under one set of sampling parameters;
the checks compare what a sampler's rules give, computed exactly, with the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specgate import sampling
from specgate.sampling import Block, SpeculativeSampler

KINDS = ["random", "near-zero", "one-hot-target", "identical", "disjoint", "greedy-draft"]
ATOL = 1e-9


@dataclass(frozen=True)
class Case:
    seed: int
    vocab: int
    k: int
    kind: str = "random"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def block(self) -> Block:
        """p: [k+1, V], q: [k, V] (q_model: the draft's distribution before filtering or argmax)."""
        g = torch.Generator().manual_seed(self.seed)
        target = torch.randn(self.k + 1, self.vocab, generator=g, dtype=torch.float64) * 2.0
        draft = torch.randn(self.k, self.vocab, generator=g, dtype=torch.float64) * 2.0
        if self.kind == "near-zero":
            target[:, : self.vocab // 2] -= 30.0  # probabilities around 1e-13
        elif self.kind == "one-hot-target":
            target[:, 0] += 80.0
        elif self.kind == "identical":
            draft = target[: self.k].clone()
        elif self.kind == "disjoint":
            half = max(1, self.vocab // 2)
            target[:, :half] = -float("inf")
            draft[:, half:] = -float("inf")
        p = sampling.process_logits(target, self.temperature, self.top_k, self.top_p)
        q = sampling.process_logits(draft, self.temperature, self.top_k, self.top_p)
        q_model = sampling.process_logits(draft, self.temperature or 1.0)
        if self.kind == "greedy-draft":
            q = sampling.process_logits(draft, 0.0)
        return Block(p, q, q_model if not torch.equal(q_model, q) else None)


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
