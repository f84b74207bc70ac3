"""A feature cell's own checks (pure), besides what every condition checks (tokens equal the
control's at temperature 0, speculation happened, acceptance against the portable record); what
each feature requires is in matrix/features.py:

- the feature was really exercised: the vLLM counter it must move (prefix-cache hits,
  preemptions) is above zero, or the output obeys it (logprobs returned, the regex matched);
- a feature that must not change what is computed ("transparent") leaves every request's tokens
  and acceptance counts equal to the plain cell's (same pairing and k, feature off), measured
  exact on the fixtures (docs/pairings.md);
- logprobs of the emitted tokens equal the control's within LOGPROB_TOLERANCE;
- with per-request seeds at temperature > 0, a second run emits the same tokens.
"""

from __future__ import annotations

import math
import re
from typing import Callable

from specgate.core.metrics import acceptance_rate
from specgate.core.results import RunResult, SpecCounters, most_drafts, summed
from specgate.gate import boundaries
from specgate.matrix.features import FEATURES, STRUCTURED_REGEX, scheduled_drafts

# fp32 on CPU: a speculative step scores k+1 positions in one forward, the control one; the
# sampled tokens' logprobs differed by at most 4.1e-6 nats over the CPU default (measured).
LOGPROB_TOLERANCE = 1e-3

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


def eos_share_problems(run: RunResult, eos: set[int], text: str, kinds: int = 1) -> list[str]:
    """A cell that names a frequent token EOS exists to end requests by EOS inside draft runs: its
    first kind of request (the first 1/``kinds`` of the run) must end by an EOS (``eos``: the named
    one and the target's own) at least half the time, or the workload no longer shows it."""
    first = run.requests[:len(run.requests) // max(kinds, 1)]
    ended = sum(1 for r in first if r.finish_reason == "stop" and r.output_token_ids[-1:] in {(e,) for e in eos})
    if 2 * ended >= len(first):
        return []
    return [f"not exercised: an EOS ({text!r} or the target's own) ended {ended} of {len(first)} requests, "
            f"under half"]


def schedule_problems(run: RunResult, schedule, drafts_every_step: bool) -> list[str]:
    """A per-batch-size speculation schedule against what the arrivals run saw (engines/arrivals.py):
    no step drafted more than the schedule allows at its batch size; a method that drafts every step
    (a model, not a lookup) reached it at every batch size; every batch size of the schedule ran
    with drafts, and the number of drafts changed between steps (where vLLM #47014 crashed on CPU).
    ``schedule``: vLLM's num_speculative_tokens_per_batch_size."""
    seen, found = most_drafts(run.engine_counters), []
    for n, most in sorted(seen.items()):
        allowed = scheduled_drafts(schedule, run.k, n)
        if most > allowed:
            found.append(f"a request was given {most} drafts in a step of {n} requests; the schedule allows {allowed}")
        elif drafts_every_step and most < allowed:
            found.append(f"no request was given more than {most} drafts in a step of {n} requests; the schedule "
                         f"asks for {allowed}")
    missing = sorted({n for first, last, _ in schedule for n in range(first, last + 1)} - set(seen))
    if missing:
        found.append(f"not exercised: no step of {', '.join(map(str, missing))} requests drafted "
                     f"(seen: {dict(sorted(seen.items()))})")
    if not run.engine_counters.get("draft_length_changes"):
        found.append("not exercised: the number of drafts never changed between steps")
    return found


def problems(feature: str, run: RunResult, control: RunResult | None, plain: RunResult | None,
             again: RunResult | None, prompt_ids: list[str], decode=None, encode=None, eos: int | None = None,
             greedy: bool = True, drafts_every_step: bool = False) -> list[str]:
    """What a feature cell (speculative or control) must satisfy beyond every condition's checks.
    ``plain``: the same condition with the feature off (None when it did not run: not judged);
    ``again``: a second run of the cell (output_check "reproducible"); ``encode`` (text -> ids),
    ``eos`` (the target's EOS id) and ``greedy`` (temperature 0): for output_check "boundaries";
    ``drafts_every_step`` (the method drafts with a model): for output_check "schedule"."""
    f = FEATURES[feature]
    if plain is not None and f.max_prompts:
        plain = plain.slice(0, f.max_prompts)
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
    if f.output_check == "boundaries" and encode is not None:
        ends = {eos, *encode(f.eos_text)} - {None} if f.eos_text else eos
        found += boundaries.problems(f.kinds(encode), run, control, plain, prompt_ids, ends, decode, greedy,
                                     f.sampling.get("max_tokens"))
        if f.eos_text:
            found += eos_share_problems(run, ends, f.eos_text, len(f.requests))
    if f.output_check == "schedule" and run.k:
        found += schedule_problems(run, f.speculative["num_speculative_tokens_per_batch_size"], drafts_every_step)
    if f.output_check == "reproducible" and again is not None:
        found += same_as(run, again, prompt_ids, "a second run with the same seeds", acceptance=False)
    return [f"feature {feature}: {p}" for p in found]
