"""Build and tear down one vLLM engine; run a prompt set through it -> results.RunResult.

Engines run in-process (VLLM_ENABLE_V1_MULTIPROCESSING=0): start-up is several times faster
and the counters and model runner live in this process. pool.EnginePool decides which engines
are alive; arguments.py builds what vLLM is given, outputs.py reads what it returns.
"""

from __future__ import annotations

import sys
import time

from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.engines import arrivals, code_path, eos, process
from specgate.engines.arguments import engine_key, llm_kwargs, sampling_params
from specgate.engines.backend import Backend
from specgate.engines.beside import Beside, speculative_clock
from specgate.engines.errors import EngineError, reason, refused
from specgate.engines.outputs import batch_latency, read_counters, record, snapshot
from specgate.engines.progress import Progress
from specgate.engines.timing import TimerError, stage_timer
from specgate.matrix.conditions import Condition
from specgate.matrix.prompts import Prompt, render_for

CODE_PATH_TOKENS = 16  # a request long enough for several verification steps at any k
# Lazy initialisation (kernel selection, numba's JIT for ngram, allocator growth) must not be
# charged to the first timed requests: each engine first runs repetitive code that makes every
# proposer draft, long enough to verify many steps.
WARMUP_TEXT = "".join(f"def get_{n}(self):\n    return self._{n}\n\n" for n in ("name", "size", "mode", "path"))


class Engine(Backend):
    """One vLLM engine for one condition. Use as a context manager; close() always frees it.

    ``stage_timers`` times proposal, scoring and verification in every run (specgate.engines.timing);
    ``clock`` picks the CUDA clock ("events" or "sync"; CPU always uses the wall clock).
    """

    def __init__(self, condition: Condition, stage_timers: bool = True, clock: str | None = None):
        super().__init__(condition)
        self.stage_timers, self.clock, self.llm, self._encode = stage_timers, clock, None, None
        # Where the engine thread never blocks (CPU backend, in-process), its time running and
        # runnable per request: a sleep or a wait added to a step is the wall time left over.
        self.cpu_clock = False

    def build(self) -> None:
        process.use_inprocess_engine()
        process.set_threads(self.condition.pairing.threads)
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
            # With the pairing's own sampling, not a feature's: the engine (and whether it builds) is
            # the same for every condition of its engine_key; a sampling vLLM refuses is a verdict.
            self._generate(self.condition.plain, [Prompt("warmup", WARMUP_TEXT)] * 2, max_tokens=32)
        except BaseException as exc:
            self.close()  # whatever was allocated before the failure (or Ctrl-C) is freed
            if not isinstance(exc, Exception):
                raise
            raise EngineError(f"{self.condition.id}: engine failed to build: {type(exc).__name__}: "
                              f"{reason(exc)}", refused=refused(exc)) from exc
        finally:
            sys.excepthook = excepthook

    def close(self) -> None:
        process.shut_down(self)

    def _texts(self, condition: Condition, prompts: list[Prompt]) -> list[str]:
        p = condition.pairing
        tokenizer = self.llm.get_tokenizer() if p.instruct else None
        return render_for(p, prompts, tokenizer)

    def _generate(self, condition: Condition, prompts: list[Prompt], first_index: int = 0, count: int | None = None,
                  **override):
        """``count``: the requests of the whole run (the prompts given are a part of it in sequential mode)."""
        count = count or len(prompts)
        encode = self.encoder()
        params = [sampling_params(condition, first_index + i, count, encode, **override) for i in range(len(prompts))]
        return self.llm.generate(self._texts(condition, prompts), params, use_tqdm=False)

    def encoder(self):
        """Text -> token ids of the target's tokenizer, without special tokens (made once per engine:
        a request's calls are recorded, engines/code_path.py)."""
        if self._encode is None:
            tokenizer = self.llm.get_tokenizer()
            self._encode = lambda text: tokenizer.encode(text, add_special_tokens=False)
        return self._encode

    def code_path(self, prompt: Prompt, condition: Condition | None = None) -> dict | None:
        """The calls one short greedy request makes (code_path.measure), in-process engines only; None
        when the prompt is longer than code_path.MAX_PROMPT_TOKENS."""
        condition = condition or self.condition
        if self.llm is None:
            return None
        if len(self.llm.get_tokenizer().encode(self._texts(condition, [prompt])[0])) > code_path.MAX_PROMPT_TOKENS:
            return None
        return code_path.measure(lambda: self._generate(condition, [prompt], max_tokens=CODE_PATH_TOKENS))

    def timed(self, condition: Condition, prompt: Prompt, index: int, count: int = 1):
        """(output, wall seconds, the engine thread's (running, runnable) seconds or None)."""
        s0, t0 = process.thread_schedule(), time.perf_counter()
        out = self._generate(condition, [prompt], first_index=index, count=count)[0]
        t1, s1 = time.perf_counter(), process.thread_schedule()
        return out, t1 - t0, ((s1[0] - s0[0], s1[1] - s0[1]) if self.cpu_clock else None)

    def _sequential(self, condition: Condition, prompts: list[Prompt], before: SpecCounters,
                    beside: Beside) -> list[RequestRecord]:
        progress = Progress(self.progress, condition.id, len(prompts), lambda: read_counters(self.llm) - before)
        records = []
        for i, (prompt, text) in enumerate(zip(prompts, self._texts(condition, prompts))):
            progress(i)
            (out, latency, schedule), timed_beside = beside.around(i, prompt, text,
                                                                   lambda: self.timed(condition, prompt, i, len(prompts)))
            records.append(record(out, latency, schedule=schedule, **timed_beside))
        return records

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
        try:  # SamplingParams vLLM refuses (n > 1 when greedy, ...) touch no engine state: it stays usable
            params = [sampling_params(condition, i, len(prompts), self.encoder()) for i in range(len(prompts))]
        except Exception as exc:
            raise EngineError(f"{condition.id}: run failed: {type(exc).__name__}: {exc}",
                              refused=refused(exc)) from exc
        before, engine_before = snapshot(self.llm)
        observed: dict[str, int] = {}  # what an arrivals run saw the engine do (arrivals.Exercised)
        started = speculative_clock()
        try:
            with timer, eos.named(self.llm, condition.feature_setting.eos_text):
                if condition.mode == "sequential":
                    records = self._sequential(condition, prompts, before, Beside(
                        condition, paired, reference, self.llm.get_tokenizer().encode))
                elif condition.mode == "arrivals":
                    records, observed = arrivals.records(self.llm, self._texts(condition, prompts), params)
                else:
                    outs = self.llm.generate(self._texts(condition, prompts), params, use_tqdm=False)
                    records = [record(out, batch_latency(out)) for out in outs]
        except Exception as exc:
            self.broken = True  # the engine's state is unknown after a crash: the pool rebuilds it
            raise EngineError(f"{condition.id}: run failed: {type(exc).__name__}: {exc}",
                              refused=refused(exc)) from exc
        wall = speculative_clock() - started  # without the requests timed beside (paired control, reference)
        after, engine_after = snapshot(self.llm)
        counters = after - before
        engine_counters = {k: v - engine_before[k] for k, v in engine_after.items()}
        engine_counters.update(observed)
        return RunResult(condition.id, condition.mode, condition.k, wall, tuple(records), counters,
                         timer.result(counters.draft_tokens, counters.drafts), engine_counters)
