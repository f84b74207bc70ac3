"""Pure metric formulas: counters and timings -> the numbers defined in docs/metrics.md.

No I/O and no vLLM: every function takes plain numbers or results.RunResult.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from specgate.core import theory
from specgate.core.results import RunResult, SpecCounters, StageTimes


# The acceptance metrics as ratios of summed counts (docs/metrics.md): the one definition read by
# a run's metrics, the progress lines, the feature cells and the gate's per-request bootstrap.
ACCEPTANCE_RATIOS: dict[str, tuple[Callable[[SpecCounters], int], Callable[[SpecCounters], int]]] = {
    "acceptance_rate": (lambda c: c.accepted, lambda c: c.draft_tokens),  # A / T
    "mean_acceptance_length": (lambda c: c.accepted + c.drafts, lambda c: c.drafts),  # 1 + A / D
}


def _ratio(name: str, c: SpecCounters) -> float | None:
    num, den = ACCEPTANCE_RATIOS[name]
    return num(c) / den(c) if den(c) else None


def acceptance_rate(c: SpecCounters) -> float | None:
    """Draft acceptance rate A / T (Leviathan et al. 2023's alpha, estimated)."""
    return _ratio("acceptance_rate", c)


def mean_acceptance_length(c: SpecCounters) -> float | None:
    """Tokens emitted per target verification step, bonus token included: 1 + A / D."""
    return _ratio("mean_acceptance_length", c)


def system_efficiency(c: SpecCounters, k: int) -> float | None:
    """Tokens emitted / tokens a perfect proposer would emit: (A + D) / (D (k + 1))."""
    return (c.accepted + c.drafts) / (c.drafts * (k + 1)) if c.drafts and k > 0 else None


def per_position_acceptance(c: SpecCounters) -> tuple[float, ...]:
    """a_i / D: the share of verification steps whose i-th draft token was accepted."""
    return tuple(a / c.drafts for a in c.accepted_per_pos) if c.drafts else ()


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile, q in [0, 100] (numpy's, as a plain float)."""
    import numpy as np

    return float(np.percentile(values, q))


@dataclass(frozen=True)
class RunMetrics:
    """Every metric of one run; None where it does not apply (e.g. acceptance of a control)."""

    k: int
    num_requests: int
    output_tokens: int
    wall_s: float
    acceptance_rate: float | None
    mean_acceptance_length: float | None
    system_efficiency: float | None
    per_position_acceptance: tuple[float, ...]
    latency_mean_s: float | None
    latency_p50_s: float | None
    latency_p90_s: float | None
    time_per_output_token_ms: float | None
    tokens_per_s: float
    speedup: float | None
    # Stage times (None when the timers were off, or the stage did not run, e.g. in a control)
    proposal_ms_per_token: float | None = None
    scoring_ms_per_step: float | None = None
    verification_ms_per_step: float | None = None
    step_ms: float | None = None
    stage_shares: dict[str, float] | None = None  # share of total step time per stage, plus "other"
    # Leviathan et al.'s model fed with this run's acceptance and measured draft/target cost
    alpha: float | None = None
    cost_ratio: float | None = None
    draft_coverage: float | None = None  # share of engine steps that carried drafts
    predicted_speedup: float | None = None
    # Serving mode (streamed): time to first token and inter-token latency (gaps between chunks)
    ttft_mean_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p90_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_mean_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p90_ms: float | None = None
    itl_p99_ms: float | None = None

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def summarize(run: RunResult, control: RunResult | None = None) -> RunMetrics:
    """Derive every metric of a run; speedup is against the control (metrics.speedup), if given."""
    c = run.counters
    out_tokens = sum(r.output_tokens for r in run.requests)
    latencies = [r.latency_s for r in run.requests if r.latency_s is not None]
    tpot = [r.latency_s / r.output_tokens * 1e3 for r in run.requests
            if r.latency_s is not None and r.output_tokens]
    tps = tokens_per_s(run)
    stages = stage_metrics(run.stages)
    model = speedup_model(run, control)
    return RunMetrics(
        k=run.k,
        num_requests=len(run.requests),
        output_tokens=out_tokens,
        wall_s=run.wall_s,
        acceptance_rate=acceptance_rate(c),
        mean_acceptance_length=mean_acceptance_length(c),
        system_efficiency=system_efficiency(c, run.k),
        per_position_acceptance=per_position_acceptance(c),
        latency_mean_s=statistics.fmean(latencies) if latencies else None,
        latency_p50_s=percentile(latencies, 50) if latencies else None,
        latency_p90_s=percentile(latencies, 90) if latencies else None,
        time_per_output_token_ms=statistics.fmean(tpot) if tpot else None,
        tokens_per_s=tps,
        speedup=speedup(run, control) if control is not None else None,
        **stages,
        **model,
        **streaming_metrics(run),
    )


def streaming_metrics(run: RunResult) -> dict:
    """TTFT over requests and ITL over every gap of every request, in ms (mean, p50, p90, p99),
    as `vllm bench serve` reports them; empty when the run did not stream."""
    ttft = [r.ttft_s * 1e3 for r in run.requests if r.ttft_s is not None]
    itl = [g * 1e3 for r in run.requests for g in r.itl_s]
    out = {}
    for name, values in (("ttft", ttft), ("itl", itl)):
        if values:
            out[f"{name}_mean_ms"] = statistics.fmean(values)
            out.update({f"{name}_p{q}_ms": percentile(values, q) for q in (50, 90, 99)})
    return out


def _per(seconds: float, count: int) -> float | None:
    return seconds / count * 1e3 if count else None


def stage_metrics(s: StageTimes | None) -> dict:
    """Average time per proposal token (proposer time / T), scoring and verification per step (ms),
    and each stage's share of the total step time; "other" is bookkeeping the timers do not split."""
    if s is None:
        return {}
    shares = None
    if s.step_s > 0:
        parts = {"scoring": s.scoring_s, "proposal": s.proposal_s, "verification": s.verification_s}
        shares = {name: t / s.step_s for name, t in parts.items()}
        shares["other"] = 1.0 - sum(shares.values())
    return {"proposal_ms_per_token": _per(s.proposal_s, s.draft_tokens),
            "scoring_ms_per_step": _per(s.scoring_s, s.steps),
            "verification_ms_per_step": _per(s.verification_s, s.verification_calls),
            "step_ms": _per(s.step_s, s.steps), "stage_shares": shares}


def cost_ratio(run: RunResult, control: RunResult | None) -> float | None:
    """Leviathan's c: time of one draft token over one plain target step (the control's mean step)."""
    if run.stages is None or control is None or control.stages is None or not run.stages.draft_tokens:
        return None
    target_step = control.stages.step_s / control.stages.steps if control.stages.steps else 0.0
    return run.stages.proposal_s / run.stages.draft_tokens / target_step if target_step > 0 else None


def draft_coverage(run: RunResult) -> float | None:
    """Steps that verified drafts (D) / all engine steps (prefills and steps without a proposal
    count too; the rejection sampler runs on every step, so its calls cannot tell them apart)."""
    s = run.stages
    return min(1.0, s.drafts / s.steps) if s is not None and s.steps and s.drafts else None


def speedup_model(run: RunResult, control: RunResult | None) -> dict:
    """alpha from the measured mean acceptance length at this k, c from the stage timers, the
    share of steps that drafted, and the speedup the model predicts from them (to compare with
    the measured one)."""
    mal = mean_acceptance_length(run.counters)
    if mal is None or run.k < 1:
        return {}
    alpha = theory.alpha_from_mean_acceptance_length(min(max(mal, 1.0), run.k + 1.0), run.k)
    c, coverage = cost_ratio(run, control), draft_coverage(run)
    predicted = None
    if c is not None and coverage is not None:
        predicted = theory.expected_speedup_with_coverage(alpha, run.k, c, coverage)
    return {"alpha": alpha, "cost_ratio": c, "draft_coverage": coverage, "predicted_speedup": predicted}


def tokens_per_s(run: RunResult) -> float:
    return sum(r.output_tokens for r in run.requests) / run.wall_s if run.wall_s > 0 else 0.0


def speedup(run: RunResult, control: RunResult) -> float | None:
    """Output tokens/s with speculation over tokens/s without, on the same prompts and sampling.
    With the control timed beside every request (paired_control: the same prompt and token count,
    at the same moment), from those pairs; else from the two runs. Two runs minutes apart on a
    shared machine moved this ratio by 10-40% (docs/baselines.md); the pairs cancel that drift."""
    if run.requests and all(r.latency_s and r.control_latency_s for r in run.requests):
        return sum(r.control_latency_s for r in run.requests) / sum(r.latency_s for r in run.requests)
    base = tokens_per_s(control)
    return tokens_per_s(run) / base if base > 0 else None


def request_counter_total(run: RunResult) -> SpecCounters | None:
    """Sum of vLLM's per-request acceptance counts, or None when any request lacks them."""
    if not run.requests or any(r.spec is None for r in run.requests):
        return None
    total = SpecCounters()
    for r in run.requests:
        total = total + r.spec
    return total
