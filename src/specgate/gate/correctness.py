"""In-run correctness, judged in every run with or without a baseline (pure).

- At temperature 0 speculation must not change a token: every request's output equals the
  no-speculation control's on the same prompt.
- vLLM's per-request acceptance counts must fit the tokens emitted: each verification step emits
  its accepted drafts plus one token, so a request's accepted drafts are at most its emitted
  tokens minus its verification steps; more means drafts past the request's end (EOS, a stop,
  max_tokens) were counted (vLLM #56101).
- Speculation must really happen: proposers that draft at every decode step must have drafted
  for every request (ngram and suffix draft only on matches; their coverage is judged against
  the baseline instead, verdict.acceptance_checks' drafts_per_token).
"""

from __future__ import annotations

from typing import Callable

from specgate.core.results import RunResult
from specgate.matrix.conditions import Condition, DRAFTS_EVERY_STEP

CONTEXT = 4  # decoded tokens shown either side of a first difference


def first_difference(a, b) -> int | None:
    """Index of the first differing token (or the shorter length when one is a prefix), else None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def token_mismatches(control: RunResult, run: RunResult, prompt_ids: list[str],
                     decode: Callable[[list[int]], str] | None = None, limit: int = 3) -> list[str]:
    """One line per request whose tokens differ from the control's (the first ``limit``, then a count)."""
    lines, total = [], 0
    for i, (c, r) in enumerate(zip(control.requests, run.requests)):
        pos = first_difference(r.output_token_ids, c.output_token_ids)
        if pos is None:
            continue
        total += 1
        if len(lines) >= limit:
            continue
        want = c.output_token_ids[pos] if pos < len(c.output_token_ids) else None
        got = r.output_token_ids[pos] if pos < len(r.output_token_ids) else None
        line = (f"prompt {prompt_ids[i] if i < len(prompt_ids) else i}: first difference at token {pos}: "
                f"expected {want}, got {got}")
        if decode is not None:
            before = list(c.output_token_ids[max(0, pos - CONTEXT):pos])
            line += (f" (after {decode(before)!r}: control {decode(list(c.output_token_ids[pos:pos + CONTEXT]))!r}, "
                     f"speculative {decode(list(r.output_token_ids[pos:pos + CONTEXT]))!r})")
        lines.append(line)
    if total > limit:
        lines.append(f"... {total - limit} more requests differ")
    if total:
        lines.insert(0, f"at temperature 0, {total} of {len(run.requests)} requests emit other tokens than "
                        f"without speculation")
    return lines


def speculation_problems(method: str, run: RunResult, prompt_ids: list[str]) -> list[str]:
    """Requests for which speculation silently did not happen."""
    if method not in DRAFTS_EVERY_STEP:
        return []
    # A request that emitted one token never reached a decode step, so it had nothing to draft.
    decoding = [i for i, r in enumerate(run.requests) if r.output_tokens > 1]
    missing = [i for i in decoding if run.requests[i].spec is None]
    if missing and len(missing) == len(decoding):
        return ["vLLM reported no per-request speculative-decoding counts (per_request_spec_decode_metrics)"]
    idle = [i for i in decoding if run.requests[i].spec is not None and run.requests[i].spec.drafts == 0] + missing
    if not idle:
        return []
    names = ", ".join(prompt_ids[i] if i < len(prompt_ids) else str(i) for i in idle[:3])
    return [f"speculation did not happen for {len(idle)} of {len(decoding)} requests ({names}"
            f"{', ...' if len(idle) > 3 else ''}): {method} drafts at every decode step, so vLLM must have "
            f"turned it off"]


def counted_past_the_end(run: RunResult, prompt_ids: list[str], allowance: int = 0) -> list[str]:
    """Requests whose accepted count A exceeds emitted tokens minus verification steps D by more
    than ``allowance`` (0 but on a build with the known defect accepted-past-end, where the last
    step may count up to k drafts past the end: engines/known_defects.py)."""
    over = [(i, r) for i, r in enumerate(run.requests)
            if r.spec is not None and r.spec.accepted - (r.output_tokens - r.spec.drafts) > allowance]
    if not over:
        return []
    i, r = over[0]
    return [f"accepted drafts counted past the end of {len(over)} of {len(run.requests)} requests (first "
            f"{prompt_ids[i] if i < len(prompt_ids) else i}: {r.spec.accepted} accepted over {r.spec.drafts} "
            f"verification steps, yet {r.output_tokens} tokens emitted: at most {r.output_tokens - r.spec.drafts} "
            f"accepted{f' plus the {allowance} the known defect allows' if allowance else ''})"]


def in_run_problems(condition: Condition, run: RunResult, control: RunResult | None, prompt_ids: list[str],
                    decode: Callable[[list[int]], str] | None = None, past_end_allowance: int = 0) -> list[str]:
    """Everything this module checks for one speculative condition (nothing for a control).
    ``past_end_allowance``: see counted_past_the_end."""
    if condition.is_control:
        return []
    # Over HTTP (serving) vLLM returns no per-request counts: the run's counters (sanity.py) judge it.
    per_request = condition.feature_setting.drafts_every_request and condition.mode != "serving"
    found = speculation_problems(condition.method, run, prompt_ids) if per_request else []
    found += counted_past_the_end(run, prompt_ids, past_end_allowance)
    if condition.temperature == 0.0 and control is not None:
        found += token_mismatches(control, run, prompt_ids, decode)
    return found
