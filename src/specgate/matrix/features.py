"""The features axis: one engine or sampling feature switched on beside speculation (pure).

Most speculative-decoding bugs live where speculation meets another feature (prefix caching,
chunked prefill, logprobs, penalties, structured output, preemption ...). A feature cell runs a
pairing at its largest k with one feature on, beside the same feature without speculation (the
cell's control), and checks, besides what every condition checks (tokens equal the control's at
temperature 0, speculation happened, acceptance against the portable record):

- the feature was really exercised: the vLLM counter it must move (prefix-cache hits,
  preemptions) is above zero, or the output obeys it (logprobs returned, the regex matched);
- a feature that must not change what is computed ("transparent") leaves every request's tokens
  and acceptance counts equal to the plain cell's (same pairing and k, feature off), measured
  exact on the fixtures (docs/pairings.md);
- logprobs of the emitted tokens equal the control's within LOGPROB_TOLERANCE;
- with per-request seeds at temperature > 0, a second run emits the same tokens.

A combination vLLM refuses (a validation error at build or request time) is "unsupported",
with vLLM's reason, and kept in the baseline like a figure, so a change in support is a change.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

from specgate.core.metrics import acceptance_rate
from specgate.core.results import RunResult, SpecCounters, summed

# fp32 on CPU: a speculative step scores k+1 positions in one forward, the control one; the
# sampled tokens' logprobs differed by at most 4.1e-6 nats over the CPU default (measured).
LOGPROB_TOLERANCE = 1e-3
# A call on a method of `self` in code: what the fixtures write after "self." most of the time.
STRUCTURED_REGEX = r"[a-z_]{1,16}\((self|x|n)?\)"


@dataclass(frozen=True)
class Feature:
    name: str
    what: str
    engine: dict = field(default_factory=dict)  # over the pairing's engine table
    sampling: dict = field(default_factory=dict)  # over the pairing's sampling
    mode: str = "sequential"
    repeat_prompts: bool = False  # every prompt twice: the second copy hits the prefix cache
    counters: tuple[str, ...] = ()  # RunResult.engine_counters keys that must each be > 0
    transparent: bool = True  # tokens and acceptance must equal the plain cell's
    # 0: every request's acceptance counts equal the plain cell's; else the largest relative
    # change of the run's acceptance rate against the plain cell's.
    acceptance_tolerance: float = 0.0
    drafts_every_request: bool = True  # False where vLLM legitimately drops every draft of a request
    output_check: str | None = None  # "logprobs", "regex", "reproducible"
    known_defects: tuple[str, ...] = ()  # known_defects keys that break this cell on affected builds


FEATURES = {f.name: f for f in (
    Feature("prefix-caching", "prefix caching, each prompt run twice so the second hits the cache",
            engine={"enable_prefix_caching": True}, repeat_prompts=True, counters=("prefix_cache_hits",)),
    Feature("chunked-prefill", "chunked prefill forced by a 64-token budget per step",
            engine={"enable_chunked_prefill": True, "max_num_batched_tokens": 64}),
    Feature("batch", "all prompts submitted at once instead of one at a time", mode="batch"),
    Feature("logprobs", "logprobs of the sampled tokens requested", sampling={"logprobs": 1},
            output_check="logprobs"),
    Feature("penalties", "repetition, presence and frequency penalties",
            sampling={"repetition_penalty": 1.2, "presence_penalty": 0.3, "frequency_penalty": 0.3},
            transparent=False),
    # vLLM drops the draft tokens the grammar rejects: 2 of 32 fixture requests (6 tokens each)
    # kept none, so only the run as a whole must have drafted.
    Feature("structured-output", f"output constrained to the regex {STRUCTURED_REGEX}",
            sampling={"structured_outputs": {"regex": STRUCTURED_REGEX}, "ignore_eos": False},
            transparent=False, output_check="regex", drafts_every_request=False),
    # A preempted request loses its drafts and is prefilled again, so its step count (and with it
    # its acceptance counts) moves: 8 of 32 fixture requests differed by a few drafts at draft_model
    # k 8 (acceptance rate -0.24%), 1 of 32 at ngram k 5 (+0.24%). Tokens must still be equal, and
    # against its own record (the same preemptions) every count is exact.
    Feature("preemption", "a KV cache small enough that batched requests are preempted",
            engine={"kv_cache_memory_bytes": 24 * 2**20}, mode="batch", counters=("num_preemptions",),
            acceptance_tolerance=0.03),
    Feature("seeds", "temperature 0.8 with a seed per request: a second run must emit the same tokens",
            sampling={"temperature": 0.8}, transparent=False, output_check="reproducible",
            known_defects=("cpu-expand-uninitialised",)),
    Feature("n2", "two completions per request (n = 2)", sampling={"n": 2}, transparent=False),
    # Continuous batching (engines/arrivals.py): a request joins every 3 engine steps, at most 3 run at once
    # (later ones wait for a freed slot), and a 40-token step budget chunks a joining request's
    # prefill beside the others' decode steps (3 x (k + 1) <= 27 tokens at k <= 8, so no draft is
    # ever cut by the budget). Every request's tokens and acceptance counts must equal the same
    # request run alone (the plain cell); the counters prove the situation arose.
    Feature("arrivals", "requests joining every 3 engine steps while others decode, prefills chunked beside "
            "them, slots freed and reused",
            engine={"max_num_seqs": 3, "enable_chunked_prefill": True, "max_num_batched_tokens": 40},
            mode="arrivals", counters=("prefill_beside_decode", "drafting_not_contiguous")),
)}


# What a condition without a feature behaves as: nothing switched on, every check at its default.
PLAIN = Feature("", "no feature")


def unknown(names) -> list[str]:
    return [n for n in names if n not in FEATURES]


def of(name: str | None) -> Feature:
    """The feature of that name; the plain condition (nothing switched on) for "" or None."""
    return FEATURES[name] if name else PLAIN


def _label(prompt_ids: list[str], i: int) -> str:
    return prompt_ids[i] if i < len(prompt_ids) else str(i)


def _spec_tuple(r) -> tuple:
    return (r.spec or SpecCounters()).counts()


def same_as(plain: RunResult, run: RunResult, prompt_ids: list[str], what: str, acceptance: bool) -> list[str]:
    """Requests whose tokens (and acceptance counts) differ from ``plain``'s, request by request."""
    if len(plain.requests) != len(run.requests):
        return [f"{what}: {len(run.requests)} requests against {len(plain.requests)}"]
    tokens = [i for i, (a, b) in enumerate(zip(plain.requests, run.requests)) if a.output_token_ids != b.output_token_ids]
    accepted = [i for i, (a, b) in enumerate(zip(plain.requests, run.requests))
                if acceptance and _spec_tuple(a) != _spec_tuple(b)]
    found = []
    if tokens:
        found.append(f"{len(tokens)} of {len(run.requests)} requests emit other tokens than {what} "
                     f"({', '.join(_label(prompt_ids, i) for i in tokens[:3])})")
    if accepted:
        i = accepted[0]
        found.append(f"acceptance differs from {what} in {len(accepted)} of {len(run.requests)} requests "
                     f"(first {_label(prompt_ids, i)}: drafts/draft tokens/accepted/per position "
                     f"{_spec_tuple(run.requests[i])} against {_spec_tuple(plain.requests[i])})")
    return found


def rate_change(plain: RunResult, run: RunResult, what: str, tolerance: float) -> list[str]:
    old, new = acceptance_rate(summed(plain.requests)), acceptance_rate(summed(run.requests))
    if old is None or new is None or abs(new / old - 1) <= tolerance:
        return []
    return [f"acceptance rate {new:.4f} against {old:.4f} for {what} ({100 * (new / old - 1):+.1f}%, "
            f"tolerance {100 * tolerance:.0f}%)"]


def logprob_problems(run: RunResult, control: RunResult, prompt_ids: list[str],
                     tolerance: float = LOGPROB_TOLERANCE) -> list[str]:
    missing = [i for i, r in enumerate(run.requests) if r.output_tokens and len(r.logprobs) != r.output_tokens]
    if missing:
        return [f"logprobs requested but missing for {len(missing)} of {len(run.requests)} requests"]
    worst, where = 0.0, None
    for i, (r, c) in enumerate(zip(run.requests, control.requests)):
        same = 0
        while same < min(len(r.output_token_ids), len(c.output_token_ids)) and \
                r.output_token_ids[same] == c.output_token_ids[same]:
            same += 1
        for j in range(min(same, len(r.logprobs), len(c.logprobs))):
            gap = abs(r.logprobs[j] - c.logprobs[j])
            if not math.isfinite(gap) or gap > worst:
                worst, where = (math.inf if not math.isfinite(gap) else gap), (i, j, r.logprobs[j], c.logprobs[j])
    if where is None or worst <= tolerance:
        return []
    i, j, got, want = where
    return [f"logprobs of the emitted tokens differ from the control's by up to {worst:.3g} nats (tolerance "
            f"{tolerance:g}; prompt {_label(prompt_ids, i)} token {j}: {got:.4f} against {want:.4f})"]


def regex_problems(run: RunResult, decode: Callable[[list[int]], str] | None, prompt_ids: list[str],
                   pattern: str = STRUCTURED_REGEX) -> list[str]:
    if decode is None:
        return []
    bad = [i for i, r in enumerate(run.requests) if not re.fullmatch(pattern, decode(list(r.output_token_ids)).strip())]
    if not bad:
        return []
    i = bad[0]
    return [f"structured output ignored: {len(bad)} of {len(run.requests)} outputs do not match {pattern} "
            f"(prompt {_label(prompt_ids, i)}: {decode(list(run.requests[i].output_token_ids))!r})"]


def problems(feature: str, run: RunResult, control: RunResult | None, plain: RunResult | None,
             again: RunResult | None, prompt_ids: list[str], decode=None) -> list[str]:
    """What a feature cell (speculative or control) must satisfy beyond every condition's checks.
    ``plain``: the same condition with the feature off (None when it did not run: not judged);
    ``again``: a second run of the cell (output_check "reproducible")."""
    f = FEATURES[feature]
    found = []
    for counter in f.counters:
        if run.engine_counters.get(counter, 0) <= 0:
            found.append(f"{feature} was not exercised: no {counter.replace('_', ' ')} counted in this run")
    requests = run
    if f.repeat_prompts:
        half = len(run.requests) // 2
        first, second = run.slice(0, half), run.slice(half, 2 * half)
        found += same_as(first, second, prompt_ids, "the same prompts before they were cached", acceptance=True)
        requests = first
    if f.transparent and plain is not None:
        what = f"the same condition without {feature}"
        found += same_as(plain, requests, prompt_ids, what, acceptance=not f.acceptance_tolerance)
        if f.acceptance_tolerance:
            found += rate_change(plain, requests, what, f.acceptance_tolerance)
    if f.output_check == "logprobs" and control is not None:
        found += logprob_problems(run, control, prompt_ids)
    if f.output_check == "regex":
        found += regex_problems(run, decode, prompt_ids)
    if f.output_check == "reproducible" and again is not None:
        found += same_as(run, again, prompt_ids, "a second run with the same seeds", acceptance=False)
    return [f"feature {feature}: {p}" for p in found]
