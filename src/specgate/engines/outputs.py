"""What vLLM hands back -> specgate's records: its cumulative counters (a snapshot summed over label
sets), one request's counts, latency and tokens (results.RequestRecord)."""

from __future__ import annotations

from specgate.core.counters import PER_POSITION, Totals
from specgate.core.results import RequestRecord, SpecCounters


def read_counters(llm) -> SpecCounters:
    """Snapshot vLLM's cumulative spec-decode counters (summed over label sets, e.g. engines)."""
    return snapshot(llm)[0]


def snapshot(llm) -> tuple[SpecCounters, dict[str, int]]:
    """One read of vLLM's metrics: the spec-decode counters and the other counters a feature
    must move (counters.ENGINE), each summed over label sets."""
    totals = Totals()
    for metric in llm.get_metrics():
        if metric.name == PER_POSITION:
            for position, value in enumerate(metric.values):
                totals.add(metric.name, value, position)
        elif getattr(metric, "value", None) is not None:
            totals.add(metric.name, metric.value)
    return totals.spec_counters(), totals.engine


def request_spec(completion) -> SpecCounters | None:
    m = getattr(completion, "spec_decode_metrics", None)
    if m is None or not getattr(m, "histogram", None):
        return None
    return SpecCounters.from_histogram(list(m.histogram), int(m.num_draft_tokens))


def batch_latency(output) -> float | None:
    """End-to-end latency of one request in a batch, from vLLM's per-request timestamps."""
    stats = getattr(output, "metrics", None)
    first = getattr(stats, "first_token_latency", None)
    t_first, t_last = getattr(stats, "first_token_ts", None), getattr(stats, "last_token_ts", None)
    if not first or not t_first or not t_last:
        return None
    return first + (t_last - t_first)


def record(output, latency: float | None, control_latency: float | None = None,
           reference_latency: float | None = None, schedule: tuple[float, float] | None = None) -> RequestRecord:
    completion = output.outputs[0]
    logprobs = ()
    if completion.logprobs:
        logprobs = tuple(float(step[t].logprob) for step, t in zip(completion.logprobs, completion.token_ids))
    stop_string = completion.stop_reason if isinstance(completion.stop_reason, str) else None
    return RequestRecord(prompt_tokens=len(output.prompt_token_ids), output_tokens=len(completion.token_ids),
                         latency_s=latency, spec=request_spec(completion),
                         output_token_ids=tuple(completion.token_ids), control_latency_s=control_latency,
                         reference_latency_s=reference_latency, logprobs=logprobs,
                         completions=len(output.outputs), cpu_s=schedule and schedule[0],
                         queued_s=schedule and schedule[1], finish_reason=completion.finish_reason,
                         stop_string=stop_string, text=completion.text if stop_string is not None else None,
                         prompt_logprobs=_prompt_logprobs(output))


def _prompt_logprobs(output) -> tuple[float, ...]:
    """Each prompt token's logprob given the tokens before it (vLLM gives None for the first)."""
    steps = getattr(output, "prompt_logprobs", None)
    if not steps:
        return ()
    return tuple(float(step[t].logprob) for step, t in zip(steps[1:], output.prompt_token_ids[1:]))
