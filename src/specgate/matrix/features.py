"""The features axis: one engine or sampling feature switched on beside speculation (pure).

Most speculative-decoding bugs live where speculation meets another feature (prefix caching,
chunked prefill, logprobs, penalties, structured output, preemption ...). A feature cell runs a
pairing at its largest k with one feature on, beside the same feature without speculation (the
cell's control). This table says what each feature switches on and what its cell must satisfy;
gate/feature_checks.py checks it.

A combination vLLM refuses (a validation error at build or request time) is "unsupported",
with vLLM's reason, and kept in the baseline like a figure, so a change in support is a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # Cells whose subject is not timing run in the cheapest mode that still shows it: all prompts
    # at once (at temperature 0 each request's tokens and counts equal the same request alone, so a
    # transparent feature is still judged against the plain cell). Chunked prefill stays sequential:
    # its 64-token budget would cut batched drafts; prefix caching, so the second copy hits.
    Feature("logprobs", "logprobs of the sampled tokens requested", sampling={"logprobs": 1},
            output_check="logprobs", mode="batch"),
    Feature("penalties", "repetition, presence and frequency penalties",
            sampling={"repetition_penalty": 1.2, "presence_penalty": 0.3, "frequency_penalty": 0.3},
            transparent=False, mode="batch"),
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
    Feature("n2", "two completions per request (n = 2)", sampling={"n": 2}, transparent=False, mode="batch"),
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
