"""Reference speculative sampling and the exact distributions it must produce.

The executable specification (Leviathan et al. 2023, Chen et al. 2023) for one block of k
draft tokens with draft distributions q_1..q_k and target distributions p_1..p_{k+1}:
accept draft x_i with probability min(1, p_i(x_i) / q_i(x_i)); at the first rejection emit a
sample of normalize(max(0, p_i - q_i)); if all k are accepted emit a bonus sample of p_{k+1}.
Then every emitted token is distributed exactly as the target would have sampled it.

``SpeculativeSampler`` holds the three rules (acceptance, residual, bonus) as methods, so the
batched sampler and the exact enumerators below run the same rules, and planted-bug variants
(tests/samplers_with_bugs.py) override one rule each. Pure torch, no vLLM.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch


def process_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits -> sampling distribution after temperature, top-k and top-p (vLLM's order).

    Temperature 0 is greedy: a one-hot distribution at the argmax.
    """
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(torch.float64)
    logits = logits.to(torch.float64) / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = logits.softmax(-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the token that crosses it stays).
        drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


@dataclass(frozen=True)
class Block:
    """One verification block. p: [..., k+1, V]; q: [..., k, V], the distribution the drafts are
    drawn from; q_model: the draft model's own distribution when it differs from q (greedy or
    filtered drafting), else None."""

    p: torch.Tensor
    q: torch.Tensor
    q_model: torch.Tensor | None = None

    @property
    def k(self) -> int:
        return self.q.shape[-2]


class SpeculativeSampler:
    """The reference rules; the exact enumerators and ``sample`` use only these three methods."""

    name = "reference"

    def ratio_q(self, block: Block) -> torch.Tensor:
        """The q that acceptance ratios and residuals use: the one the drafts were drawn from."""
        return block.q

    def accept_prob(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Per-token acceptance probability min(1, p/q) ([..., V]); tokens with q = 0 are never drafted."""
        return torch.where(q > 0, (p / q.clamp(min=1e-300)).clamp(max=1.0), torch.ones_like(p))

    def residual(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Distribution sampled after a rejection: normalize(max(0, p - q))."""
        r = (p - q).clamp(min=0.0)
        total = r.sum(-1, keepdim=True)
        # total = 0 means p <= q everywhere, i.e. p = q: rejection then has probability 0.
        return torch.where(total > 0, r / total.clamp(min=1e-300), p)

    def bonus(self, block: Block) -> torch.Tensor:
        """Distribution of the extra token emitted when all k drafts are accepted: p_{k+1}."""
        return block.p[..., -1, :]

    # -- batched sampling ------------------------------------------------------------------
    def sample(self, block: Block, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw drafts from q and run one block per batch row.

        Returns (tokens [B, k+1] with -1 after the last emitted token, accepted count [B]).
        """
        batch, k, vocab = block.q.shape
        q = block.q.to(torch.float64).reshape(-1, vocab)
        drafts = torch.multinomial(q, 1, generator=generator).reshape(batch, k)
        return self.verify(block, drafts, generator)

    def verify(self, block: Block, drafts: torch.Tensor, generator: torch.Generator):
        p, q_r = block.p.to(torch.float64), self.ratio_q(block).to(torch.float64)
        batch, k = drafts.shape
        vocab = p.shape[-1]
        acc = self.accept_prob(p[:, :k], q_r).gather(-1, drafts[..., None])[..., 0]
        u = torch.rand(batch, k, generator=generator, dtype=torch.float64)
        accepted = (u < acc).to(torch.int64).cumprod(-1).sum(-1)
        residual = self.residual(p[:, :k], q_r)
        res_tokens = torch.multinomial(residual.reshape(-1, vocab), 1, generator=generator).reshape(batch, k)
        bonus = torch.multinomial(self.bonus(block).to(torch.float64), 1, generator=generator)[:, 0]
        last = torch.cat([res_tokens, bonus[:, None]], 1).gather(1, accepted[:, None])[:, 0]
        pos = torch.arange(k + 1)[None, :]
        padded = torch.cat([drafts, torch.full((batch, 1), -1)], 1)
        tokens = torch.where(pos < accepted[:, None], padded, torch.full_like(padded, -1))
        tokens = tokens.scatter(1, accepted[:, None], last[:, None])
        return tokens, accepted


REFERENCE = SpeculativeSampler()


# -- exact distributions (one block, no batch dimension, float64) ----------------------------

def _accept_mass(sampler: SpeculativeSampler, block: Block) -> tuple[torch.Tensor, torch.Tensor]:
    """a[i, x]: probability that draft i is x and is accepted; rej[i]: that draft i is rejected."""
    p, q = block.p.to(torch.float64), block.q.to(torch.float64)
    q_r = sampler.ratio_q(block).to(torch.float64)
    a = q * sampler.accept_prob(p[: block.k], q_r)
    return a, 1.0 - a.sum(-1)


def first_token_distribution(block: Block, sampler: SpeculativeSampler = REFERENCE) -> torch.Tensor:
    """Exact distribution of the first emitted token: accepted draft 1, or the residual after rejecting it."""
    a, rej = _accept_mass(sampler, block)
    q_r = sampler.ratio_q(block).to(torch.float64)
    return a[0] + rej[0] * sampler.residual(block.p[0].to(torch.float64), q_r[0])


def accepted_count_distribution(block: Block, sampler: SpeculativeSampler = REFERENCE) -> torch.Tensor:
    """Exact P(n accepted drafts), n = 0..k."""
    a, rej = _accept_mass(sampler, block)
    keep = a.sum(-1)
    probs, alive = [], torch.tensor(1.0, dtype=torch.float64)
    for i in range(block.k):
        probs.append(alive * rej[i])
        alive = alive * keep[i]
    return torch.stack(probs + [alive])


def expected_accepted(block: Block, sampler: SpeculativeSampler = REFERENCE) -> float:
    dist = accepted_count_distribution(block, sampler)
    return float((dist * torch.arange(block.k + 1, dtype=torch.float64)).sum())


def block_distribution(block: Block, sampler: SpeculativeSampler = REFERENCE) -> dict[tuple[int, ...], float]:
    """Exact distribution of the emitted token tuple of one block, by enumeration (small V^k only)."""
    vocab, k = block.p.shape[-1], block.k
    a, rej = _accept_mass(sampler, block)
    q_r = sampler.ratio_q(block).to(torch.float64)
    p = block.p.to(torch.float64)
    last = [rej[j] * sampler.residual(p[j], q_r[j]) for j in range(k)] + [sampler.bonus(block).to(torch.float64)]
    out: dict[tuple[int, ...], float] = {}
    for j in range(k + 1):
        for prefix in itertools.product(range(vocab), repeat=j):
            mass = math.prod(float(a[i, x]) for i, x in enumerate(prefix))
            if mass == 0.0:
                continue
            for y in range(vocab):
                value = mass * float(last[j][y])
                if value > 0.0:
                    out[prefix + (y,)] = value
    return out


def stream_distribution(p: torch.Tensor, q: torch.Tensor, k: int,
                        sampler: SpeculativeSampler = REFERENCE) -> dict[tuple[int, ...], float]:
    """Exact joint distribution of the first N tokens generated by repeated blocks.

    p: [N, V] target and q: [N, V] draft distributions per absolute position (independent of the
    context, so the target's own joint is the product of p). Each block drafts as many tokens as
    are left (at most k) and the next block starts after its last emitted token.
    """
    n = p.shape[0]
    memo: dict[int, dict[tuple[int, ...], float]] = {n: {(): 1.0}}

    def from_position(s: int) -> dict[tuple[int, ...], float]:
        if s in memo:
            return memo[s]
        kk = min(k, n - 1 - s)
        if kk == 0:
            block_out = {(y,): float(v) for y, v in enumerate(p[s].tolist()) if v > 0}
        else:
            block_out = block_distribution(Block(p[s : s + kk + 1], q[s : s + kk]), sampler)
        out: dict[tuple[int, ...], float] = {}
        for head, mass in block_out.items():
            for tail, rest in from_position(s + len(head)).items():
                key = head + tail
                out[key] = out.get(key, 0.0) + mass * rest
        memo[s] = out
        return out

    return from_position(0)


def product_distribution(p: torch.Tensor) -> dict[tuple[int, ...], float]:
    """The target's own joint over N positions with context-independent p: [N, V]."""
    out = {}
    for seq in itertools.product(range(p.shape[-1]), repeat=p.shape[0]):
        mass = math.prod(float(p[i, x]) for i, x in enumerate(seq))
        if mass > 0.0:
            out[seq] = mass
    return out


def expected_accepted_formula(p: torch.Tensor, q: torch.Tensor) -> float:
    """Closed form E[n] = sum_i prod_{l <= i} beta_l, beta_l = sum_x min(p_l(x), q_l(x))."""
    beta = torch.minimum(p[: q.shape[0]].to(torch.float64), q.to(torch.float64)).sum(-1)
    return float(beta.cumprod(0).sum())
