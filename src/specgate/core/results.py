"""Plain records of one run: what the engine produced, before any metric is derived.

Kept free of vLLM imports so metrics, verdicts and reports can load saved runs anywhere.
"""

from __future__ import annotations

import operator

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class SpecCounters:
    """vLLM's cumulative speculative-decoding counters (or a difference of two snapshots)."""

    drafts: int = 0  # D: verification steps that carried draft tokens
    draft_tokens: int = 0  # T: draft tokens proposed
    accepted: int = 0  # A: draft tokens accepted
    accepted_per_pos: tuple[int, ...] = ()  # a_i: steps whose i-th draft token was accepted

    def _combine(self, other: SpecCounters, op) -> SpecCounters:
        n = max(len(self.accepted_per_pos), len(other.accepted_per_pos))
        mine = self.accepted_per_pos + (0,) * (n - len(self.accepted_per_pos))
        theirs = other.accepted_per_pos + (0,) * (n - len(other.accepted_per_pos))
        return SpecCounters(op(self.drafts, other.drafts), op(self.draft_tokens, other.draft_tokens),
                            op(self.accepted, other.accepted), tuple(map(op, mine, theirs)))

    def __sub__(self, other: SpecCounters) -> SpecCounters:
        return self._combine(other, operator.sub)

    def __add__(self, other: SpecCounters) -> SpecCounters:
        return self._combine(other, operator.add)

    def counts(self, k: int = 0) -> tuple[int, int, int, tuple[int, ...]]:
        """(D, T, A, a_1..a_k): every count of one request, per position padded with zeros to ``k``,
        for comparing two requests' counts exactly."""
        per_pos = self.accepted_per_pos + (0,) * (k - len(self.accepted_per_pos))
        return self.drafts, self.draft_tokens, self.accepted, per_pos

    @classmethod
    def from_dict(cls, d: dict | None) -> SpecCounters | None:
        """From a saved run or record (None stays None: no counts reported)."""
        return None if d is None else cls(d["drafts"], d["draft_tokens"], d["accepted"], tuple(d["accepted_per_pos"]))

    @classmethod
    def from_histogram(cls, histogram: list[int], draft_tokens: int) -> SpecCounters:
        """From vLLM's per-request histogram: histogram[j] = verify steps that accepted j drafts."""
        k = len(histogram) - 1
        per_pos = tuple(sum(histogram[j] for j in range(i + 1, k + 1)) for i in range(k))
        return cls(drafts=sum(histogram), draft_tokens=draft_tokens,
                   accepted=sum(j * n for j, n in enumerate(histogram)), accepted_per_pos=per_pos)


@dataclass(frozen=True)
class RequestRecord:
    prompt_tokens: int
    output_tokens: int
    latency_s: float | None  # None where the run mode cannot time requests one by one
    spec: SpecCounters | None = None  # vLLM's per-request acceptance counts, when reported
    output_token_ids: tuple[int, ...] = ()
    control_latency_s: float | None = None  # the same prompt on the no-speculation engine, timed right beside it
    reference_latency_s: float | None = None  # a control's prompt through transformers, timed right beside it
    logprobs: tuple[float, ...] = ()  # each emitted token's logprob, when the sampling asked for them
    completions: int = 1  # outputs returned for the request (sampling n); the first is recorded
    ttft_s: float | None = None  # serving (streamed): time to the first token
    itl_s: tuple[float, ...] = ()  # serving (streamed): gaps between successive chunks of tokens
    cpu_s: float | None = None  # the engine thread's time on a CPU during the request (in-process CPU engines)
    queued_s: float | None = None  # and its time runnable, waiting for a CPU (another process had it)
    steps: tuple[int, int] | None = None  # arrivals mode: the engine steps at which it joined and finished
    finish_reason: str | None = None  # vLLM's: "length", "stop" (EOS, a stop id or a stop string), ...
    # What ended it when a stop string did (the string), kept with the output text it cut: a stop
    # inside a multi-token step is where speculation breaks request boundaries (gate/boundaries.py).
    stop_string: str | None = None
    text: str | None = None
    prompt_logprobs: tuple[float, ...] = ()  # each prompt token's logprob after the first, when asked for


@dataclass(frozen=True)
class StageTimes:
    """Seconds spent in each stage of the engine steps of one run (specgate.engines.timing measures them)."""

    steps: int  # engine steps (target forward passes), prefills included
    step_s: float  # whole steps: scoring + sampling (which contains verification and proposal)
    scoring_s: float
    proposal_s: float
    proposal_calls: int
    verification_s: float
    verification_calls: int
    draft_tokens: int  # T of the same run, so per-token figures survive summing rounds
    clock: str = "wall"
    drafts: int = 0  # D of the same run (steps that verified drafts)

    def __add__(self, other: StageTimes) -> StageTimes:
        fields = [f for f in self.__dataclass_fields__ if f != "clock"]
        return StageTimes(**{f: getattr(self, f) + getattr(other, f) for f in fields}, clock=self.clock)


@dataclass(frozen=True)
class RunResult:
    condition_id: str
    mode: str
    k: int
    wall_s: float
    requests: tuple[RequestRecord, ...]
    counters: SpecCounters = field(default_factory=SpecCounters)
    stages: StageTimes | None = None  # None when the stage timers were off
    # Other vLLM counters moved by the run (prefix_cache_hits, num_preemptions): proof that a
    # feature was exercised (matrix/features.py).
    engine_counters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def slice(self, start: int, stop: int) -> RunResult:
        """The requests start..stop as a run of their own (its counters: the requests' sums)."""
        requests = self.requests[start:stop]
        return replace(self, requests=requests, counters=summed(requests), stages=None)

    @classmethod
    def from_dict(cls, d: dict) -> RunResult:
        counters = SpecCounters.from_dict
        requests = tuple(RequestRecord(r["prompt_tokens"], r["output_tokens"], r["latency_s"],
                                       counters(r.get("spec")), tuple(r.get("output_token_ids", ())),
                                       r.get("control_latency_s"), r.get("reference_latency_s"),
                                       tuple(r.get("logprobs", ())), r.get("completions", 1), r.get("ttft_s"),
                                       tuple(r.get("itl_s", ())), r.get("cpu_s"), r.get("queued_s"),
                                       tuple(r["steps"]) if r.get("steps") else None,
                                       r.get("finish_reason"), r.get("stop_string"), r.get("text"),
                                       tuple(r.get("prompt_logprobs", ())))
                         for r in d["requests"])
        stages = d.get("stages")
        return cls(d["condition_id"], d["mode"], d["k"], d["wall_s"], requests, counters(d["counters"]),
                   None if stages is None else StageTimes(**stages), dict(d.get("engine_counters") or {}))


# engine_counters key prefix: "most_drafts_at_batch_3" = the most drafts a request got in a step of 3.
MOST_DRAFTS = "most_drafts_at_batch_"


def most_drafts(counters: dict[str, int]) -> dict[int, int]:
    """Batch size -> most drafts per request, as engines/arrivals.Exercised wrote them."""
    return {int(key[len(MOST_DRAFTS):]): value for key, value in counters.items() if key.startswith(MOST_DRAFTS)}


def summed(requests) -> SpecCounters:
    """The requests' counts added up (a request with none reported counts as zero)."""
    total = SpecCounters()
    for r in requests:
        total = total + (r.spec or SpecCounters())
    return total


def combine_rounds(runs: list[RunResult]) -> RunResult:
    """Several rounds of the same prompts -> one result: per-request latency and wall time are the
    median over rounds (damps machine noise); tokens and acceptance counts come from round one;
    stage times are summed over rounds (they are reported per step or per token)."""
    first = runs[0]
    if len(runs) == 1:
        return first

    def median(values: list[float | None]) -> float | None:
        vals = sorted(v for v in values if v is not None)
        if len(vals) < len(values):
            return None
        mid = len(vals) // 2
        return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2

    requests = tuple(replace(r, latency_s=median([run.requests[i].latency_s for run in runs]),
                             control_latency_s=median([run.requests[i].control_latency_s for run in runs])
                             if r.control_latency_s is not None else None,
                             reference_latency_s=median([run.requests[i].reference_latency_s for run in runs])
                             if r.reference_latency_s is not None else None,
                             cpu_s=median([run.requests[i].cpu_s for run in runs]) if r.cpu_s is not None else None,
                             queued_s=median([run.requests[i].queued_s for run in runs])
                             if r.queued_s is not None else None)
                     for i, r in enumerate(first.requests))
    stages = None
    if all(run.stages is not None for run in runs):
        stages = runs[0].stages
        for run in runs[1:]:
            stages = stages + run.stages
    return replace(first, wall_s=median([run.wall_s for run in runs]), requests=requests, stages=stages)
