"""Distribution test cases: a speculative block (target p, draft q) built from seeded random logits
of one shape (random, near-zero, one-hot target, identical, disjoint, greedy draft) under one set
of sampling parameters. Pure math; used by the shipped distribution suite and the exact tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specgate.lossless import sampling
from specgate.lossless.sampling import Block

KINDS = ["random", "near-zero", "one-hot-target", "identical", "disjoint", "greedy-draft"]


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
