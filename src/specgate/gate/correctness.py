"""In-run correctness, judged in every run with or without a baseline (pure).

- At temperature 0 speculation must not change a token: every request's output equals the
  no-speculation control's on the same prompt.
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


def in_run_problems(condition: Condition, run: RunResult, control: RunResult | None, prompt_ids: list[str],
                    decode: Callable[[list[int]], str] | None = None) -> list[str]:
    """Everything this module checks for one speculative condition (nothing for a control)."""
    if condition.is_control:
        return []
    # Over HTTP (serving) vLLM returns no per-request counts: the run's counters (sanity.py) judge it.
    per_request = condition.feature_setting.drafts_every_request and condition.mode != "serving"
    found = speculation_problems(condition.method, run, prompt_ids) if per_request else []
    if condition.temperature == 0.0 and control is not None:
        found += token_mismatches(control, run, prompt_ids, decode)
    return found
