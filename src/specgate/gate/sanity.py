"""Invariants every run must satisfy, whatever the baseline: broken counters or truncated
outputs mean the measurement itself is wrong, so the benchmark fails before any comparison."""

from __future__ import annotations

from specgate.core.metrics import RunMetrics, request_counter_total
from specgate.core.results import RunResult
from specgate.matrix.conditions import Condition


def problems(condition: Condition, run: RunResult, m: RunMetrics) -> list[str]:
    """Every violated invariant, one readable line each (empty when the run is sane)."""
    p, found = condition.pairing, []
    f = condition.feature_setting
    expected = min(p.num_prompts, f.max_prompts or p.num_prompts) * f.copies
    if len(run.requests) != expected:
        found.append(f"{len(run.requests)} requests finished, expected {expected}")
    # A cell whose requests end their own ways (features.Feature.requests) is judged on where they end
    # by its own checks (gate/boundaries.py).
    ignore_eos = bool(condition.feature_setting.sampling.get("ignore_eos", p.ignore_eos)) and \
        not condition.feature_setting.requests
    short = [i for i, r in enumerate(run.requests) if r.output_tokens == 0 or
             (ignore_eos and r.output_tokens != p.max_new_tokens)]
    if short:
        found.append(f"requests {short[:5]} produced the wrong number of tokens "
                     f"(expected {p.max_new_tokens} with ignore_eos={ignore_eos})")
    if m.tokens_per_s <= 0:
        found.append(f"tokens/s is {m.tokens_per_s}")
    c = run.counters
    if condition.is_control:
        if c.drafts or c.draft_tokens:
            found.append(f"control run reports speculation: {c}")
        return found
    if c.drafts <= 0:
        found.append("no draft was proposed: vLLM's spec-decode counters did not move")
        return found
    if not 0 <= c.accepted <= c.draft_tokens <= c.drafts * condition.k:
        found.append(f"counters out of order: need 0 <= A={c.accepted} <= T={c.draft_tokens} "
                     f"<= D*k={c.drafts * condition.k}")
    if c.accepted_per_pos:
        if sum(c.accepted_per_pos) != c.accepted:
            found.append(f"per-position accepted counts sum to {sum(c.accepted_per_pos)}, not A={c.accepted}")
        if any(a < b for a, b in zip(c.accepted_per_pos, c.accepted_per_pos[1:])):
            found.append(f"per-position accepted counts rise with position: {c.accepted_per_pos}")
    if any(a > c.drafts for a in c.accepted_per_pos):
        found.append(f"a position's acceptance exceeds 1: accepted per position {c.accepted_per_pos} over "
                     f"D={c.drafts} drafts")
    per_request = request_counter_total(run)
    # Not in batch mode: a preempted request's drafts stay in the engine's counters, not in its summary.
    if per_request is not None and run.mode in ("sequential", "arrivals"):
        engine = (c.drafts, c.accepted, c.draft_tokens, _padded(c.accepted_per_pos, condition.k))
        requests = (per_request.drafts, per_request.accepted, per_request.draft_tokens,
                    _padded(per_request.accepted_per_pos, condition.k))
        if engine != requests:
            found.append(f"vLLM's counters disagree: engine D={engine[0]}, A={engine[1]}, T={engine[2]}, "
                         f"per position {list(engine[3])}; sum of per-request histograms D={requests[0]}, "
                         f"A={requests[1]}, T={requests[2]}, per position {list(requests[3])}")
    # The floor is the pairing's; a feature that changes the output (penalties, another temperature)
    # changes acceptance by design, and its baseline judges it.
    floor = None if not condition.feature_setting.transparent else p.tolerances.get("min_acceptance_rate")
    if floor is not None and m.acceptance_rate is not None and m.acceptance_rate < floor:
        found.append(f"acceptance rate {m.acceptance_rate:.3f} is below the pairing's floor {floor:.3f}")
    return found


def _padded(values: tuple[int, ...], k: int) -> tuple[int, ...]:
    return tuple(values) + (0,) * (k - len(values))
