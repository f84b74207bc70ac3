"""Build and tear down one vLLM engine; run a prompt set through it -> results.RunResult.

Engines run in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0): start-up is several times faster
and the counters and model runner live in this process. pool.EnginePool decides which engines
are alive.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import time
from dataclasses import replace
from typing import Any

from specgate.engines import arrivals
from specgate.engines import code_path
from specgate.matrix.config import Condition
from specgate.core.counters import PER_POSITION, Totals
from specgate.engines.vllm_compat import guard_llvmlite_against_kernel_scan
from specgate.matrix.prompts import Prompt, render_for
from specgate.engines.backend import Backend
from specgate.engines.beside import Beside
from specgate.engines.progress import Progress
from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.engines.timing import TimerError, stage_timer

CODE_PATH_TOKENS = 16  # a request long enough for several verification steps at any k
WARMUP_TEXT = "".join(f"def get_{n}(self):\n    return self._{n}\n\n" for n in ("name", "size", "mode", "path"))


class EngineError(RuntimeError):
    """An engine failed to build or to run; the message names the condition and keeps vLLM's reason.
    ``refused``: vLLM rejected the configuration or the request (a validation error), as opposed
    to crashing while running it; a feature cell reports it as unsupported (matrix/features.py)."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused


def _refused(exc: BaseException) -> bool:
    # vLLM validates engine arguments (pydantic, ValueError) and requests (VLLMValidationError, a
    # ValueError) before running anything; NotImplementedError marks an unsupported combination.
    return (isinstance(exc, (ValueError, NotImplementedError))
            or any(c.__name__ == "VLLMClientError" for c in type(exc).__mro__))


def use_inprocess_engine() -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    guard_llvmlite_against_kernel_scan()


def thread_schedule() -> tuple[float, float]:
    """This thread's seconds running on a CPU and waiting runnable for one (Linux schedstat): what
    is left of the wall time was spent blocked (sleeping, waiting on a lock or I/O). Elsewhere the
    thread's CPU time, and no runnable time."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            running, runnable = f.read().split()[:2]
        return int(running) / 1e9, int(runnable) / 1e9
    except (OSError, ValueError):
        return time.thread_time(), 0.0


def set_threads(threads: int) -> None:
    """torch's intra-op thread count for every engine in this process (0 leaves torch's default).
    The CPU default runs one: with two OpenMP threads on two cores, a single busy core stalls every
    parallel region and a request takes four times as long (docs/baselines.md)."""
    if not threads:
        return
    # vLLM's ngram proposer sets numba's thread count and restores it after every proposal; numba
    # shares torch's OpenMP runtime, so numba's default (one per core) would come back into torch.
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(threads)
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    import torch

    # torch._C's setter: vLLM's CPU worker replaces torch.set_num_threads by a no-op once an
    # engine has started (it guards the thread binding of its worker processes, which an
    # in-process engine does not have).
    torch._C.set_num_threads(threads)
    if torch.get_num_threads() != threads:
        raise EngineError(f"threads = {threads}: torch runs {torch.get_num_threads()} threads after setting it")


def llm_kwargs(condition: Condition) -> dict[str, Any]:
    """Keyword arguments for vllm.LLM: the pairing's engine table wins over specgate's defaults."""
    p = condition.pairing
    kwargs: dict[str, Any] = {
        "model": p.target,
        "dtype": p.dtype,
        "seed": p.seed,
        # Counters are read from the stat loggers, which exist only with stats on.
        "disable_log_stats": False,
        "trust_remote_code": False,
    }
    if not condition.is_control:
        spec = {"method": condition.method, "num_speculative_tokens": condition.k, **p.speculative}
        if p.draft is not None:
            spec["model"] = p.draft
        kwargs["speculative_config"] = spec
        kwargs["per_request_spec_decode_metrics"] = "summary"
    kwargs.update(p.engine)
    kwargs.update(condition.feature_setting.engine)
    kwargs.update(p.features.get(condition.feature, {}))
    return kwargs


def engine_key(condition: Condition) -> str:
    """Conditions with equal keys can share one engine (they differ only in sampling or mode;
    serving needs a server, which other modes cannot share)."""
    return ("serving:" if condition.mode == "serving" else "") + repr(sorted(llm_kwargs(condition).items()))


def sampling_kwargs(condition: Condition) -> dict[str, Any]:
    p = condition.pairing
    kw = {"temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k,
          "max_tokens": p.max_new_tokens, "ignore_eos": p.ignore_eos}
    kw.update(condition.feature_setting.sampling)
    return kw


def sampling_params(condition: Condition, index: int, **override):
    """vLLM's SamplingParams for the index-th request of a condition."""
    from vllm import SamplingParams

    kw = {**sampling_kwargs(condition), **override}
    if isinstance(kw.get("structured_outputs"), dict):
        from vllm.sampling_params import StructuredOutputsParams

        kw["structured_outputs"] = StructuredOutputsParams(**kw["structured_outputs"])
    # A per-request seed keeps each request's sample independent of batch order.
    return SamplingParams(seed=condition.pairing.seed + index, **kw)


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


def _request_spec(completion) -> SpecCounters | None:
    m = getattr(completion, "spec_decode_metrics", None)
    if m is None or not getattr(m, "histogram", None):
        return None
    return SpecCounters.from_histogram(list(m.histogram), int(m.num_draft_tokens))


def _batch_latency(output) -> float | None:
    """End-to-end latency of one request in a batch, from vLLM's per-request timestamps."""
    stats = getattr(output, "metrics", None)
    first = getattr(stats, "first_token_latency", None)
    t_first, t_last = getattr(stats, "first_token_ts", None), getattr(stats, "last_token_ts", None)
    if not first or not t_first or not t_last:
        return None
    return first + (t_last - t_first)


class Engine(Backend):
    """One vLLM engine for one condition. Use as a context manager; close() always frees it.

    ``stage_timers`` times proposal, scoring and verification in every run (specgate.engines.timing);
    ``clock`` picks the CUDA clock ("events" or "sync"; CPU always uses the wall clock).
    """

    def __init__(self, condition: Condition, stage_timers: bool = True, clock: str | None = None):
        super().__init__(condition)
        self.stage_timers, self.clock, self.llm = stage_timers, clock, None
        # Where the engine thread never blocks (CPU backend, in-process), its time running and
        # runnable per request: a sleep or a wait added to a step is the wall time left over.
        self.cpu_clock = False

    def build(self) -> None:
        use_inprocess_engine()
        set_threads(self.condition.pairing.threads)
        from vllm import LLM

        started = time.perf_counter()
        # torch.distributed chains a "[rank0]:" prefixer onto sys.excepthook at every engine start;
        # twenty engines in one process would prefix every uncaught error twenty times.
        excepthook = sys.excepthook
        try:
            self.llm = LLM(**llm_kwargs(self.condition))
            self.build_s = time.perf_counter() - started
            from vllm.platforms import current_platform

            self.cpu_clock = current_platform.is_cpu()
            # Lazy initialisation (kernel selection, numba's JIT for ngram, allocator growth) must
            # not be charged to the first timed requests: warm up with repetitive code that makes
            # every proposer draft, long enough to verify many steps. With the pairing's own
            # sampling, not a feature's: the engine (and whether it builds) is the same for every
            # condition of its engine_key, and a sampling setting vLLM refuses is the run's verdict.
            self._generate(self.condition.plain, [Prompt("warmup", WARMUP_TEXT)] * 2, max_tokens=32)
        except BaseException as exc:
            self.close()  # whatever was allocated before the failure (or Ctrl-C) is freed
            if not isinstance(exc, Exception):
                raise
            raise EngineError(f"{self.condition.id}: engine failed to build: {type(exc).__name__}: "
                              f"{_reason(exc)}", refused=_refused(exc)) from exc
        finally:
            sys.excepthook = excepthook

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        try:
            if core is not None:
                core.shutdown()
        finally:
            del llm, core
            _release_memory()

    def _texts(self, condition: Condition, prompts: list[Prompt]) -> list[str]:
        p = condition.pairing
        tokenizer = self.llm.get_tokenizer() if p.instruct else None
        return render_for(p, prompts, tokenizer)

    def _generate(self, condition: Condition, prompts: list[Prompt], first_index: int = 0, **override):
        params = [sampling_params(condition, first_index + i, **override) for i in range(len(prompts))]
        return self.llm.generate(self._texts(condition, prompts), params, use_tqdm=False)

    def code_path(self, prompt: Prompt, condition: Condition | None = None) -> dict | None:
        """The calls one short greedy request makes (code_path.measure), in-process engines only."""
        condition = condition or self.condition
        if self.llm is None:
            return None
        return code_path.measure(lambda: self._generate(condition, [prompt], max_tokens=CODE_PATH_TOKENS))

    def timed(self, condition: Condition, prompt: Prompt, index: int):
        """(output, wall seconds, the engine thread's (running, runnable) seconds or None)."""
        s0, t0 = thread_schedule(), time.perf_counter()
        out = self._generate(condition, [prompt], first_index=index)[0]
        t1, s1 = time.perf_counter(), thread_schedule()
        return out, t1 - t0, ((s1[0] - s0[0], s1[1] - s0[1]) if self.cpu_clock else None)

    def _sequential(self, condition: Condition, prompts: list[Prompt], before: SpecCounters,
                    beside: Beside) -> list[RequestRecord]:
        progress = Progress(self.progress, condition.id, len(prompts), lambda: read_counters(self.llm) - before)
        records = []
        for i, (prompt, text) in enumerate(zip(prompts, self._texts(condition, prompts))):
            progress(i)
            (out, latency, schedule), timed_beside = beside.around(i, prompt, text,
                                                                   lambda: self.timed(condition, prompt, i))
            records.append(_record(out, latency, schedule=schedule, **timed_beside))
        return records

    def _arrivals(self, condition: Condition, prompts: list[Prompt]) -> tuple[list[RequestRecord], dict[str, int]]:
        params = [sampling_params(condition, i) for i in range(len(prompts))]
        outputs, steps, seen = arrivals.run(self.llm, self._texts(condition, prompts), params)
        return [replace(_record(out, None), steps=s) for out, s in zip(outputs, steps)], seen.as_counters()

    def run_once(self, prompts: list[Prompt], condition: Condition | None = None,
                 paired: Engine | None = None, reference=None) -> RunResult:
        """``paired`` (the no-speculation engine) or ``reference`` (reference_timing.MachineReference)
        is timed beside each request in sequential mode (beside.Beside)."""
        condition = condition or self.condition
        if engine_key(condition) != engine_key(self.condition):
            raise EngineError(f"{condition.id}: needs a different engine than {self.condition.id}")
        if self.llm is None:
            raise EngineError(f"{condition.id}: engine is closed")
        try:
            timer = stage_timer(self.llm, self.stage_timers, self.clock)
        except TimerError as exc:
            raise EngineError(f"{condition.id}: {exc}") from exc
        before, engine_before = snapshot(self.llm)
        observed: dict[str, int] = {}  # what an arrivals run saw the engine do (arrivals.Exercised)
        started = time.perf_counter()
        try:
            with timer:
                if condition.mode == "sequential":
                    records = self._sequential(condition, prompts, before, Beside(
                        condition, paired, reference, self.llm.get_tokenizer().encode))
                elif condition.mode == "arrivals":
                    records, observed = self._arrivals(condition, prompts)
                else:
                    records = [_record(out, _batch_latency(out)) for out in self._generate(condition, prompts)]
        except Exception as exc:
            self.broken = True  # the engine's state is unknown after a crash: the pool rebuilds it
            raise EngineError(f"{condition.id}: run failed: {type(exc).__name__}: {exc}",
                              refused=_refused(exc)) from exc
        # The requests timed beside (paired control, machine reference) are not this run's time.
        wall = time.perf_counter() - started - sum((r.control_latency_s or 0.0) + (r.reference_latency_s or 0.0)
                                                   for r in records)
        after, engine_after = snapshot(self.llm)
        counters = after - before
        engine_counters = {k: v - engine_before[k] for k, v in engine_after.items()}
        engine_counters.update(observed)
        return RunResult(condition.id, condition.mode, condition.k, wall, tuple(records), counters,
                         timer.result(counters.draft_tokens, counters.drafts), engine_counters)


def _reason(exc: Exception) -> str:
    """vLLM's own words, on one line: pydantic's validation messages, else the exception's last line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(str(e.get("msg", e)) for e in errors())
        except Exception:  # noqa: BLE001 - not pydantic after all
            pass
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.strip().startswith("For further information")]
    return lines[-1] if lines else type(exc).__name__


def _record(output, latency: float | None, control_latency: float | None = None,
            reference_latency: float | None = None, schedule: tuple[float, float] | None = None) -> RequestRecord:
    completion = output.outputs[0]
    logprobs = ()
    if completion.logprobs:
        logprobs = tuple(float(step[t].logprob) for step, t in zip(completion.logprobs, completion.token_ids))
    return RequestRecord(prompt_tokens=len(output.prompt_token_ids), output_tokens=len(completion.token_ids),
                         latency_s=latency, spec=_request_spec(completion),
                         output_token_ids=tuple(completion.token_ids), control_latency_s=control_latency,
                         reference_latency_s=reference_latency, logprobs=logprobs,
                         completions=len(output.outputs), cpu_s=schedule and schedule[0],
                         queued_s=schedule and schedule[1])


_UNFREEZE_AT_EXIT = False


def _release_memory() -> None:
    """Collect the closed engine, then freeze what is left alive. vLLM, torch and transformers keep
    about 600,000 objects that every full collection walks (0.4 s on 2 cores), and vLLM collects
    seven times while building an engine and twice while closing one: 2.0 of a fixture engine's
    2.7 s build and most of its 1.7 s close. Frozen objects are skipped until the next engine's
    shutdown unfreezes them (vLLM freezes its own heap at start and unfreezes it there), so nothing
    an engine holds is ever kept from the collector; vLLM's server freezes its heap the same way."""
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    except ImportError:  # moved in a newer vLLM: fall back to the collector alone
        cleanup_dist_env_and_memory = gc.collect
    cleanup_dist_env_and_memory()  # unfreezes and collects
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    global _UNFREEZE_AT_EXIT
    if not _UNFREEZE_AT_EXIT:
        # Frozen objects are left out of the collection at exit, and nanobind reports them as leaks.
        _UNFREEZE_AT_EXIT = bool(atexit.register(gc.unfreeze))
    gc.freeze()
