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

from specgate.engines.outputs import request_spec
from specgate.lossless import stats
from specgate.lossless.target_distribution import OTHER, Setting, TwoTokenDistribution

ALPHA = 1e-6  # false-failure probability per cell
# A line of code three times: the likely second tokens are already in the text, so a repetition penalty
# moves token 2 by TV 0.38 at 1.5 (on "a, b, c, a, ...": 0.15, under twice the 0.076 the cell detects).
REPEATING = "self.name = name\n        self.name = name\n        self.name = name\n        self."
SETTINGS = (
    # The heads' drafts reach the rejection sampler every method shares, and at temperature 1 it processes
    # nothing: a fault in a head's engine path moves the distribution under any setting, so the heads run
    # the two that process the logits (temperature with top-p, top-k) and temperature 1 runs on the rest.
    Setting("temperature-1", methods=("draft_model", "ngram")),
    Setting("temperature-0.7-top-p-0.8", temperature=0.7, top_p=0.8),
    Setting("top-k-5", top_k=5),
    Setting("min-p-0.2", min_p=0.2),
    # On the fixture's code prompt ignoring a repetition penalty at token 2 moves it by TV 0.042 at 1.5
    # (0.044 at 2.0), under the 0.064 a cell detects: the penalty runs on a prompt of its own (docs/lossless.md).
    # The penalties are applied in the rejection sampler every method shares (over the output and the
    # step's drafts), so they run on the draft_model pairings (greedy and probabilistic drafting, k 1
    # and 3); ngram barely drafts under a penalty (1% of requests), so its cells tested nothing.
    Setting("repetition-penalty-1.5", repetition_penalty=1.5, prompt=REPEATING, methods=("draft_model",)),
    # Token masks at the speculative position (vLLM #18902: bad_words and allowed_token_ids ignored there;
    # #26317: min_tokens). On the code prompt "." is token 2 with probability 0.30, ":" 0.06: each setting
    # removes them, so ignoring it at token 2 moves token 2 by far more than a cell detects (docs/lossless.md).
    Setting("bad-words", bad_words=(".",), methods=("draft_model",), smallest_k_only=True),
    Setting("allowed-tokens", allowed_token_texts=(" os", " _", " sys", " module", " (", " import", ":", "_", "(",
                                                   "s", "name", "path", "\n   "),
            methods=("draft_model",), smallest_k_only=True),
    Setting("min-tokens-2", min_tokens=2, stop_token_texts=(".", ":"), methods=("draft_model",), smallest_k_only=True),
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

    tokenizer = llm.get_tokenizer()
    kwargs = setting.request_kwargs(lambda text: tokenizer.encode(text, add_special_tokens=False))
    params = [SamplingParams(max_tokens=2, ignore_eos=True, seed=seed + i, **kwargs) for i in range(n)]
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
        spec = request_spec(completion)
        drafted += bool(spec and spec.draft_tokens)
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


FIRST_NOT_ENUMERATED = "first-not-enumerated"


def second_bins(dist: TwoTokenDistribution, n: int) -> dict:
    """Token 2's marginal as the token-2 test bins it: each t2 with an expected count of 5 or more a
    bin of its own (summed over every first token, so a shift the joint's sparse bins pool away
    still shows), the rest OTHER, first tokens not enumerated apart."""
    marginal = dist.second_marginal()
    out = {t2: float(marginal[t2]) for t2 in (marginal * n >= 5.0).nonzero().flatten().tolist()}
    rest = float(marginal.sum()) - sum(out.values())
    if rest > 0:
        out[OTHER] = rest
    if dist.not_enumerated() > 1e-12:
        out[FIRST_NOT_ENUMERATED] = dist.not_enumerated()
    return out


def judge_exact(dist: TwoTokenDistribution, sample: Sample, alpha: float = ALPHA) -> Judgement:
    n = len(sample.pairs)
    named = dist.bins(min_probability=5.0 / n)
    joint = stats.g_test((dist.bin_of(t1, t2, named) for t1, t2 in sample.pairs), named)
    second_expected = second_bins(dist, n)

    def second_bin(t1, t2):
        key = dist.bin_of(t1, t2, named)
        if key == (OTHER,):
            return FIRST_NOT_ENUMERATED
        if key not in named:
            return key  # impossible outcome: fails outright
        return t2 if t2 in second_expected else OTHER
    second = stats.g_test((second_bin(t1, t2) for t1, t2 in sample.pairs), second_expected)
    return Judgement(joint.passes(alpha / 2) and second.passes(alpha / 2), joint, second,
                     detectable(dist, n, alpha))


def _detectable_over(bins: dict, n: int, alpha: float) -> float:
    """stats.detectable_tv over a test's bins (those expected under 5 pooled, as stats.g_test does)."""
    probabilities = list(bins.values())
    df = sum(1 for p in probabilities if p * n >= 5.0) + any(p * n < 5.0 for p in probabilities) - 1
    return stats.detectable_tv(probabilities, n, alpha / 2, max(df, 1))


def detectable(dist: TwoTokenDistribution, n: int, alpha: float = ALPHA) -> float:
    """The smallest TV shift of the joint that a cell of ``n`` samples detects with probability
    0.99 (stats.detectable_tv, over the bins the joint G-test uses)."""
    return _detectable_over(dist.bins(min_probability=5.0 / n), n, alpha)


def visibility(dist: TwoTokenDistribution, ignored: TwoTokenDistribution, n: int,
               alpha: float = ALPHA) -> tuple[float, float, str]:
    """How far an engine that samples ``ignored`` (the setting ignored at token 2) lands from ``dist``
    as a cell of ``n`` samples sees it: (TV over the test's bins, the smallest TV that test detects
    with probability 0.99, "joint" or "token 2"), for whichever of the two tests sees it best."""
    named = dist.bins(min_probability=5.0 / n)

    def joint(d: TwoTokenDistribution) -> dict:
        mass = {key: float(d.first[key[0]]) * float(d.second[key[0]][key[1]])
                for key in named if len(key) == 2 and key[1] != OTHER}
        for key in named:
            if key == (OTHER,):
                mass[key] = d.not_enumerated()
            elif key[1] == OTHER:
                mass[key] = float(d.first[key[0]]) - sum(v for k, v in mass.items() if len(k) == 2 and k[0] == key[0])
        return mass

    bins2 = second_bins(dist, n)

    def second(d: TwoTokenDistribution) -> dict:
        marginal = d.second_marginal()
        mass = {t2: float(marginal[t2]) for t2 in bins2 if t2 not in (OTHER, FIRST_NOT_ENUMERATED)}
        mass[OTHER] = float(marginal.sum()) - sum(mass.values())
        mass[FIRST_NOT_ENUMERATED] = d.not_enumerated()
        return mass

    seen = []
    for name, masses, bins in (("joint", joint, named), ("token 2", second, bins2)):
        a, b = masses(dist), masses(ignored)
        shift = 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))
        seen.append((shift, _detectable_over(bins, n, alpha), name))
    return max(seen, key=lambda x: x[0] / x[1])


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
