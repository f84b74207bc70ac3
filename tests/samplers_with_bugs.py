"""Planted bugs: samplers that each break one rule of speculative sampling.

Each is a bug that has shipped, or nearly, in real engines. The distribution tests must
reject every one of them (lossless/test_distribution_mutants.py) while the reference passes.
"""

import torch

from specgate.lossless.sampling import Block, SpeculativeSampler


class ResampleFromTarget(SpeculativeSampler):
    """After a rejection, sample from p instead of the residual max(0, p - q)."""

    name = "resample-from-p"

    def residual(self, p, q):
        return p


class InvertedRatio(SpeculativeSampler):
    """Accept with min(1, q/p) instead of min(1, p/q)."""

    name = "inverted-ratio"

    def accept_prob(self, p, q):
        return torch.where(p > 0, (q / p.clamp(min=1e-300)).clamp(max=1.0), torch.ones_like(p))


class BonusFromDraft(SpeculativeSampler):
    """Draw the bonus token from the last draft distribution q_k instead of p_{k+1}."""

    name = "bonus-from-q"

    def bonus(self, block: Block):
        return block.q[..., -1, :]


class BonusOffByOne(SpeculativeSampler):
    """Draw the bonus token from p_k (the last draft position) instead of p_{k+1}."""

    name = "bonus-off-by-one"

    def bonus(self, block: Block):
        return block.p[..., -2, :]


class RatioWithModelQ(SpeculativeSampler):
    """Use the draft model's unfiltered softmax in the ratio while drafts come from the filtered
    (top-k / top-p) or greedy distribution."""

    name = "ratio-with-unfiltered-q"

    def ratio_q(self, block: Block):
        return block.q if block.q_model is None else block.q_model


class SwappedResidual(SpeculativeSampler):
    """Resample from normalize(max(0, q - p)): the residual with its operands swapped."""

    name = "swapped-residual"

    def residual(self, p, q):
        return super().residual(q, p)


MUTANTS = [ResampleFromTarget(), InvertedRatio(), BonusFromDraft(), BonusOffByOne(), RatioWithModelQ(),
           SwappedResidual()]
