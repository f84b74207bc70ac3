"""Adapters that run real engines' rejection samplers on a sampling.Block.

Each adapter has the interface of sampling.SpeculativeSampler.sample: drafts are drawn from
q here, the engine's code verifies them, and the result is (tokens [B, k+1] padded with -1,
accepted count [B]). The tests compare the outcomes with the exact reference distribution.
"""

from __future__ import annotations

import dataclasses

import torch

from specgate.engines.vllm_compat import guard_llvmlite_against_kernel_scan
from specgate.lossless.sampling import Block


def _drafts(block: Block, generator: torch.Generator) -> torch.Tensor:
    batch, k, vocab = block.q.shape
    return torch.multinomial(block.q.reshape(-1, vocab).to(torch.float64), 1, generator=generator).reshape(batch, k)


def _accepted(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens >= 0).sum(-1) - 1


class VllmRejectionSampler:
    """vLLM v1's ``rejection_sample`` (Triton kernels on GPU, C++ kernels on CPU).

    The bonus token is sampled here from p_{k+1}, as vLLM's main sampler does before calling it.
    One-hot q (greedy drafting, ngram) is passed as ``draft_probs=None``, vLLM's convention.
    """

    name = "vllm"

    def __init__(self, device: str | None = None):
        from vllm.platforms import current_platform
        from vllm.v1.sample import rejection_sampler

        # Where vLLM samples: the blocks are built on the CPU and moved there for the kernels.
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

        # Without Triton (CPU), vLLM swaps its kernels for C++ ops when a model runner starts;
        # calling the sampler on its own needs the same swap.
        register = getattr(current_platform, "register_triton_kernel_overrides", None)
        if register is not None:
            guard_llvmlite_against_kernel_scan()
            register()
        self._rejection_sample = rejection_sampler.rejection_sample

    def _metadata(self, batch: int):
        from vllm.v1.sample.logits_processor import LogitsProcessors
        from vllm.v1.sample.metadata import SamplingMetadata

        known = dict(
            temperature=torch.ones(batch, device=self.device), all_greedy=False, all_random=True, top_p=None, top_k=None,
            generators={}, max_num_logprobs=None, no_penalties=True, prompt_token_ids=None,
            frequency_penalties=torch.zeros(batch, device=self.device),
            presence_penalties=torch.zeros(batch, device=self.device),
            repetition_penalties=torch.ones(batch, device=self.device), output_token_ids=[[] for _ in range(batch)],
            allowed_token_ids_mask=None, bad_words_token_ids={}, logitsprocs=LogitsProcessors(),
        )
        fields = dataclasses.fields(SamplingMetadata)
        missing = [f.name for f in fields if f.name not in known and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise RuntimeError(f"vllm.v1.sample.metadata.SamplingMetadata has new required fields {missing}; "
                               f"update specgate.lossless.real_samplers.VllmRejectionSampler._metadata")
        return SamplingMetadata(**{f.name: known[f.name] for f in fields if f.name in known})

    def sample(self, block: Block, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch, k, vocab = block.q.shape
        drafts = _drafts(block, generator)
        # vLLM draws its uniforms from the global generator when a request has none of its own.
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        bonus = torch.multinomial(block.p[:, -1].to(torch.float64), 1, generator=generator).to(torch.int32)
        q = block.q.to(torch.float32)
        one_hot = bool(((q == 0) | (q == 1)).all())

        def on_device(x: torch.Tensor) -> torch.Tensor:
            return x.to(self.device).contiguous()

        with torch.no_grad():
            tokens = self._rejection_sample(
                on_device(drafts.reshape(-1).to(torch.int32)), [k] * batch, k,
                on_device(torch.arange(1, batch + 1, dtype=torch.int32) * k),
                None if one_hot else on_device(q.reshape(-1, vocab)),
                on_device(block.p[:, :k].to(torch.float32).log().reshape(-1, vocab)),
                on_device(bonus), self._metadata(batch),
            )
        tokens = tokens.to("cpu", torch.int64)
        return tokens, _accepted(tokens)


class HfSpeculativeSampler:
    """Hugging Face transformers' ``_speculative_sampling`` (assisted generation), one row at a time."""

    name = "transformers"

    def __init__(self):
        from transformers.generation import utils

        self._fn = utils._speculative_sampling

    def sample(self, block: Block, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch, k, _ = block.q.shape
        drafts = _drafts(block, generator)
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        log_q, log_p = block.q.to(torch.float32).log(), block.p.to(torch.float32).log()
        tokens = torch.full((batch, k + 1), -1, dtype=torch.int64)
        for b in range(batch):
            valid, _ = self._fn(drafts[b : b + 1], log_q[b : b + 1], k, log_p[b : b + 1])
            tokens[b, : valid.shape[-1]] = valid[0]
        return tokens, _accepted(tokens)
