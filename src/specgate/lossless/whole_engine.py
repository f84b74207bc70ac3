"""Lossless sampling end to end: does a speculative engine's output follow the target's
distribution at temperature > 0? Runs whole vLLM engines (proposer, scoring pass, rejection
sampler, the engine's random streams) on many short continuations of one prompt, and tests the
first two tokens (the second comes from a speculative step) against the exact target
distribution (target_distribution.py), or, for models too large to enumerate, against the
no-speculation engine's samples.

Statistics (stats.py): G-tests of the joint of (token 1, token 2) and of token 2's marginal,
rare outcomes pooled, each at alpha / 2 so one cell's false-failure probability is at most alpha;
an outcome the target gives probability 0 (outside top-k, top-p or min-p) fails outright.
"""

from __future__ import annotations

from dataclasses import dataclass

from specgate.lossless import stats
from specgate.lossless.target_distribution import OTHER, Setting, TwoTokenDistribution

ALPHA = 1e-6  # false-failure probability per cell
SETTINGS = (
    Setting("temperature-1"),
    Setting("temperature-0.7-top-p-0.8", temperature=0.7, top_p=0.8),
    Setting("top-k-5", top_k=5),
    Setting("min-p-0.2", min_p=0.2),
    Setting("repetition-penalty-1.5", repetition_penalty=1.5),
)


class Unsupported(Exception):
    """vLLM refuses this setting with speculative decoding; the message is vLLM's reason."""


@dataclass(frozen=True)
class Sample:
    pairs: list[tuple[int, int]]
    drafted: int  # requests for which vLLM reports at least one draft

    @property
    def drafted_share(self) -> float:
        return self.drafted / len(self.pairs) if self.pairs else 0.0


def sample_pairs(llm, prompt_ids: list[int], setting: Setting, n: int, seed: int) -> Sample:
    """``n`` continuations of two tokens, all in one batch, each with its own seed."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [SamplingParams(max_tokens=2, ignore_eos=True, seed=seed + i, **setting.sampling_kwargs())
              for i in range(n)]
    try:
        outs = llm.generate([TokensPrompt(prompt_token_ids=prompt_ids)] * n, params, use_tqdm=False)
    except Exception as exc:  # noqa: BLE001 - vLLM's validation errors have no stable base class
        if "not yet supported" in str(exc) or "not supported" in str(exc):
            raise Unsupported(str(exc).strip().splitlines()[-1]) from None
        raise
    pairs, drafted = [], 0
    for out in outs:
        completion = out.outputs[0]
        pairs.append(tuple(completion.token_ids[:2]))
        m = getattr(completion, "spec_decode_metrics", None)
        drafted += bool(m is not None and getattr(m, "num_draft_tokens", 0))
    return Sample(pairs, drafted)


@dataclass(frozen=True)
class Judgement:
    passed: bool
    joint: stats.FitResult
    second: stats.FitResult
    detectable_tv: float  # smallest TV shift of the joint detected with probability 0.99

    def describe(self) -> str:
        return (f"joint of tokens 1-2: {self.joint.describe()}; token 2: {self.second.describe()}; "
                f"detects a {self.detectable_tv:.3f} TV shift with probability 0.99")


def judge_exact(dist: TwoTokenDistribution, sample: Sample, alpha: float = ALPHA) -> Judgement:
    n = len(sample.pairs)
    named = dist.bins(min_probability=5.0 / n)
    joint = stats.g_test((dist.bin_of(t1, t2, named) for t1, t2 in sample.pairs), named)
    second_expected: dict = {}
    for (t1, *rest), p in named.items():
        key = (rest[0] if rest and rest[0] != OTHER else OTHER) if t1 != OTHER else "first-not-enumerated"
        second_expected[key] = second_expected.get(key, 0.0) + p
    # The named second tokens' marginals are only complete where every first token's mass was named:
    # count the rest of each t1 under OTHER, as the joint does.
    def second_bin(t1, t2):
        key = dist.bin_of(t1, t2, named)
        if key == (OTHER,):
            return "first-not-enumerated"
        if key not in named:
            return key  # impossible outcome: fails outright
        return key[1] if key[1] != OTHER else OTHER
    second = stats.g_test((second_bin(t1, t2) for t1, t2 in sample.pairs), second_expected)
    tv = stats.detectable_tv(list(named.values()), n, alpha / 2, max(joint.df, 1))
    return Judgement(joint.passes(alpha / 2) and second.passes(alpha / 2), joint, second, tv)


def judge_two_sample(reference: Sample, sample: Sample, alpha: float = ALPHA) -> Judgement:
    """Against the no-speculation engine's samples (for targets too large to enumerate)."""
    joint = stats.two_sample_g_test(reference.pairs, sample.pairs)
    second = stats.two_sample_g_test([p[1] for p in reference.pairs], [p[1] for p in sample.pairs])
    counts = {}
    for p in reference.pairs:
        counts[p] = counts.get(p, 0) + 1
    probs = [c / len(reference.pairs) for c in counts.values()]
    # Two samples of n each: the noise of both enters, about half the power of a one-sample test.
    tv = stats.detectable_tv(probs, len(sample.pairs) // 2, alpha / 2, max(joint.df, 1))
    return Judgement(joint.passes(alpha / 2) and second.passes(alpha / 2), joint, second, tv)
