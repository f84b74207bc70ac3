"""Stage timers: time the proposer, the target's scoring pass and the rejection sampler inside a
live in-process engine, per verification step, by wrapping the model runner's methods.

vLLM v1 logs no stage times, so specgate measures them where vLLM calls them:

    step          = model_runner.execute_model + model_runner.sample_tokens (one engine step)
    scoring       = model_runner.execute_model (input preparation, the target's forward over the
                    last token and the k drafts of every request, logits)
    verification  = model_runner.rejection_sampler.forward (accept/reject, recovered and bonus tokens)
    proposal      = model_runner.propose_draft_token_ids (draft inputs, drafter.propose, copy-out)

Proposal and verification run inside sample_tokens; the rest of the step (bookkeeping, state
updates) is reported as "other". If vLLM renames a method the timers refuse to start with a
message naming it, never with wrong numbers.

Clocks: on CPU plain perf_counter. On CUDA kernels run asynchronously, so a wall clock around a
call measures launch time only. Two choices (``clock=``):
  "sync"   synchronise the device before reading the clock at each boundary: true wall time per
           stage, but removes vLLM's CPU/GPU overlap (async scheduling), so steps get slower;
  "events" record CUDA events on the current stream and resolve them after the run: GPU time per
           stage, at the cost of one event record per boundary (microseconds), no serialisation.
"events" is the default on CUDA; see docs/metrics.md for the overhead of each.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass
from typing import Any, Callable

from specgate.core.results import StageTimes
from specgate.engines.runner import RunnerAccessError, model_runner, wrapped

# (stage, attribute path from the model runner, whether it must exist)
STAGES = (
    ("scoring", ("execute_model",), True),
    ("sample", ("sample_tokens",), True),
    ("proposal", ("propose_draft_token_ids",), False),
    ("verification", ("rejection_sampler", "forward"), False),
)


class TimerError(RuntimeError):
    pass


class WallClock:
    """perf_counter at each boundary; exact on CPU, where every call is synchronous."""

    name = "wall"

    def mark(self) -> Any:
        return time.perf_counter()

    def seconds(self, start: Any, end: Any) -> float:
        return end - start

    def resolve(self) -> None:
        pass


class SyncClock(WallClock):
    """Synchronise the device first, so the wall clock includes the stage's queued kernels."""

    name = "sync"

    def __init__(self, torch_module):
        self._sync = torch_module.cuda.synchronize

    def mark(self) -> Any:
        self._sync()
        return time.perf_counter()


class EventClock:
    """CUDA events recorded on the current stream; durations read once the run has finished."""

    name = "events"

    def __init__(self, torch_module):
        self._event = functools.partial(torch_module.cuda.Event, enable_timing=True)
        self._sync = torch_module.cuda.synchronize

    def mark(self) -> Any:
        event = self._event()
        event.record()
        return event

    def resolve(self) -> None:
        self._sync()

    def seconds(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


def make_clock(device_type: str, clock: str | None = None):
    if device_type != "cuda":
        if clock not in (None, "wall"):
            raise TimerError(f"clock {clock!r} needs a CUDA device; this engine runs on {device_type}")
        return WallClock()
    import torch

    choice = clock or "events"
    if choice == "events":
        return EventClock(torch)
    if choice == "sync":
        return SyncClock(torch)
    raise TimerError(f"unknown stage clock {choice!r}: use 'events' or 'sync'")


def _owner(root: Any, path: tuple[str, ...], stage: str, required: bool):
    obj, walked = root, type(root).__name__
    for attr in path[:-1]:
        obj = getattr(obj, attr, None)
        walked += f".{attr}"
        if obj is None:
            break
    if obj is None or not callable(getattr(obj, path[-1], None)):
        if not required:
            return None
        raise TimerError(f"cannot time the {stage} stage: vLLM's {walked}.{path[-1]} is missing in this version; "
                         f"update specgate.engines.timing.STAGES (or run with --specgate-no-stage-timers)")
    return obj


@dataclass
class _Accumulator:
    clock: Any
    spans: dict[str, list[tuple[Any, Any]]]

    def timed(self, stage: str, fn: Callable) -> Callable:
        spans = self.spans.setdefault(stage, [])

        @functools.wraps(fn)
        def timed_call(*args, **kwargs):
            start = self.clock.mark()
            try:
                return fn(*args, **kwargs)
            finally:
                spans.append((start, self.clock.mark()))

        return timed_call

    def total(self, stage: str) -> tuple[float, int]:
        spans = self.spans.get(stage, [])
        return sum(self.clock.seconds(a, b) for a, b in spans), len(spans)


class StageTimer:
    """Context manager around one run: ``with StageTimer(llm) as t: ...``; then ``t.result(T)``."""

    def __init__(self, llm, clock: str | None = None):
        runner = model_runner(llm)
        device = getattr(getattr(runner, "device", None), "type", "cpu")
        self._acc = _Accumulator(make_clock(device, clock), {})
        self._targets = []
        for stage, path, required in STAGES:
            owner = _owner(runner, path, stage, required)
            if owner is not None:
                self._targets.append((owner, path[-1], stage))
        if getattr(runner, "speculative_config", None) is not None and len(self._targets) < len(STAGES):
            missing = {s for s, _, _ in STAGES} - {s for _, _, s in self._targets}
            raise TimerError(f"speculative decoding is on but vLLM's model runner has no hook for {sorted(missing)}; "
                             f"update specgate.engines.timing.STAGES (or run with --specgate-no-stage-timers)")
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> StageTimer:
        for owner, name, stage in self._targets:
            self._stack.enter_context(wrapped(owner, name, functools.partial(self._acc.timed, stage)))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def result(self, draft_tokens: int, drafts: int = 0) -> StageTimes:
        self._acc.clock.resolve()
        scoring, steps = self._acc.total("scoring")
        sample, _ = self._acc.total("sample")
        proposal, proposal_calls = self._acc.total("proposal")
        verification, verify_calls = self._acc.total("verification")
        return StageTimes(steps=steps, step_s=scoring + sample, scoring_s=scoring, proposal_s=proposal,
                          proposal_calls=proposal_calls, verification_s=verification,
                          verification_calls=verify_calls, draft_tokens=draft_tokens,
                          clock=self._acc.clock.name, drafts=drafts)


def stage_timer(llm, enabled: bool = True, clock: str | None = None):
    """A StageTimer, or a no-op context (result() -> None) when disabled."""
    if not enabled:
        return _NoTimer()
    try:
        return StageTimer(llm, clock)
    except RunnerAccessError as exc:
        raise TimerError(f"stage timers need the in-process engine: {exc}") from exc


class _NoTimer(contextlib.nullcontext):
    def result(self, draft_tokens: int, drafts: int = 0) -> None:
        return None
