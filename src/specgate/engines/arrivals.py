"""Continuous batching, driven in-process: requests join the engine between its steps on a fixed
schedule, as they do in serving, so that a request prefills (in chunks, under a small step budget)
beside others that decode, requests finish at different steps, and later requests take the
batch slots that finished ones freed. The sequential and batch modes never do this: one holds a
single request, the other prefills everything in its first steps and then decodes together.

The schedule is counted in engine steps, not seconds, so a run is the same on any machine: the
i-th request joins before step ``i * every`` (the engine skips ahead when it has nothing to do).
What the run did is measured from the engine itself after every step (``Exercised``), so a cell
that never produced the situation it exists for says so instead of passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from specgate.core.results import MOST_DRAFTS, RequestRecord
from specgate.engines.outputs import record
from specgate.engines.runner import RunnerAccessError, model_runner

EVERY = 3  # engine steps between two arrivals


def schedule(n: int, every: int = EVERY) -> list[int]:
    """The engine step before which each of ``n`` requests joins (request order)."""
    return [i * every for i in range(n)]


@dataclass
class Exercised:
    """Counts over a run's steps: what continuous batching must have produced (RunResult.engine_counters)."""

    steps: int = 0
    # Steps after which a request still had part of its prompt to prefill while another decoded.
    prefill_beside_decode: int = 0
    # Steps after which a request still prefilling held a batch slot below one that drafted: the
    # requests that draft are not contiguous from slot 0 (vLLM indexes drafts by slot).
    drafting_not_contiguous: int = 0
    # Batch size (requests in the step) -> the most draft tokens any request was given for its next
    # step: what a per-batch-size speculation schedule (vLLM's num_speculative_tokens_per_batch_size)
    # must bound. Read from the scheduler, where the drafts wait to be verified.
    most_drafts_at: dict[int, int] = field(default_factory=dict)
    draft_length_changes: int = 0  # steps whose most drafts differ from the step before's
    _last_drafts: int = -1

    def as_counters(self) -> dict[str, int]:
        return {"arrival_steps": self.steps, "prefill_beside_decode": self.prefill_beside_decode,
                "drafting_not_contiguous": self.drafting_not_contiguous,
                "draft_length_changes": self.draft_length_changes,
                **{f"{MOST_DRAFTS}{n}": d for n, d in sorted(self.most_drafts_at.items())}}


def _scheduler(llm):
    core = getattr(llm.llm_engine.engine_core, "engine_core", None)
    if core is None:
        raise RunnerAccessError("the arrivals mode reads the engine's scheduler after every step: it needs the "
                                "engine core in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0)")
    return core.scheduler


def _observe(scheduler, runner, seen: Exercised) -> None:
    """One look at the scheduler's requests and the runner's batch slots after a step. A request
    whose prompt is not yet fully computed ran a prefill chunk (vLLM discards its draft: the same
    flag vLLM's scheduler reads); the others decoded and drafted."""
    slots = list(runner.input_batch.req_ids)  # slot order: what vLLM indexes drafts by
    prefilling = []
    for req_id in slots:
        request = scheduler.requests.get(req_id)
        prefilling.append(request is not None and bool(getattr(request, "is_prefill_chunk", False)))
    seen.steps += 1
    drafted = [len(getattr(scheduler.requests.get(r), "spec_token_ids", None) or ()) for r in slots]
    if slots and any(drafted):
        most = max(drafted)
        seen.most_drafts_at[len(slots)] = max(seen.most_drafts_at.get(len(slots), 0), most)
        seen.draft_length_changes += seen._last_drafts not in (-1, most)
        seen._last_drafts = most
    if any(prefilling) and not all(prefilling):
        seen.prefill_beside_decode += 1
        first_prefill = prefilling.index(True)
        if any(not p for p in prefilling[first_prefill + 1:]):
            seen.drafting_not_contiguous += 1


def run(llm, texts: list[str], params: list, every: int = EVERY) -> tuple[list, list[tuple[int, int]], Exercised]:
    """Each text joins ``llm``'s engine on the schedule -> (vLLM's final RequestOutput per text, in
    order; (step joined, step finished) per text; what the run exercised)."""
    engine = llm.llm_engine
    if engine.has_unfinished_requests():
        raise RuntimeError("the engine still holds unfinished requests from an earlier run")
    scheduler, runner = _scheduler(llm), model_runner(llm)
    joins = schedule(len(texts), every)
    outputs: list = [None] * len(texts)
    steps: list[tuple[int, int]] = [(j, -1) for j in joins]
    index: dict[str, int] = {}
    seen, step, waiting = Exercised(), 0, 0
    while waiting < len(texts) or engine.has_unfinished_requests():
        if not engine.has_unfinished_requests():
            step = max(step, joins[waiting])  # an idle engine waits for nobody
        while waiting < len(texts) and joins[waiting] <= step:
            # vLLM may give the request an internal id; its outputs carry the one given here.
            engine.add_request(f"arrival-{waiting}", texts[waiting], params[waiting])
            index[f"arrival-{waiting}"] = waiting
            waiting += 1
        for out in engine.step():
            if out.finished:
                i = index[out.request_id]
                outputs[i], steps[i] = out, (joins[i], step)
        _observe(scheduler, runner, seen)
        step += 1
    return outputs, steps, seen


def records(llm, texts: list[str], params: list) -> tuple[list[RequestRecord], dict[str, int]]:
    """One arrivals run -> each request's record (with the steps it joined and finished at) and the
    situations the engine was seen in (Exercised.as_counters)."""
    outputs, steps, seen = run(llm, texts, params)
    return [replace(record(out, None), steps=s) for out, s in zip(outputs, steps)], seen.as_counters()
