"""Reach into an in-process vLLM engine: its model runner, and temporary method wrappers.

Stage timers and fault injection need the objects vLLM's engine core uses. They exist in this
process only with VLLM_ENABLE_V1_MULTIPROCESSING=0 (specgate's default). When vLLM moves them,
these functions fail with a message naming the missing attribute, never with wrong numbers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

# llm.llm_engine.engine_core (InprocClient) .engine_core (EngineCore) .model_executor
# .driver_worker (WorkerWrapperBase) .worker (e.g. CPUWorker, Worker) .model_runner
_PATH = ("llm_engine", "engine_core", "engine_core", "model_executor", "driver_worker", "worker", "model_runner")


_ABSENT = object()


class RunnerAccessError(RuntimeError):
    pass


def model_runner(llm) -> Any:
    obj, walked = llm, "llm"
    for attr in _PATH:
        if not hasattr(obj, attr):
            hint = (" (the engine core runs in another process: set VLLM_ENABLE_V1_MULTIPROCESSING=0)"
                    if attr == "engine_core" and walked.endswith("llm_engine.engine_core") else "")
            raise RunnerAccessError(f"vLLM layout changed: {walked} ({type(obj).__name__}) has no '{attr}'{hint}; "
                                    f"update specgate.engines.runner._PATH for this vLLM version")
        obj, walked = getattr(obj, attr), f"{walked}.{attr}"
    return obj


def drafter(llm) -> Any:
    runner = model_runner(llm)
    found = getattr(runner, "drafter", None)
    if found is None:
        raise RunnerAccessError(f"{type(runner).__name__} has no 'drafter': is speculative decoding on?")
    return found


@contextlib.contextmanager
def wrapped(obj: Any, name: str, make: Callable[[Callable], Callable]):
    """Replace ``obj.name`` by ``make(original)`` for the duration of the block."""
    original = getattr(obj, name)
    own = vars(obj).get(name, _ABSENT)
    setattr(obj, name, make(original))
    try:
        yield
    finally:
        # Put back exactly what was there: an instance attribute, or none. Setting the bound method
        # back as an instance attribute would pin it, hiding any later change to the class's method.
        if own is _ABSENT:
            delattr(obj, name)
        else:
            setattr(obj, name, own)
