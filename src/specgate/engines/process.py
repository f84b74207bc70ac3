"""What an engine needs from the process it runs in: in-process mode, torch's thread count, the
engine thread's schedule (running, runnable), and memory released after an engine closes."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import time

from specgate.engines.errors import EngineError
from specgate.engines.vllm_compat import guard_llvmlite_against_kernel_scan


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


_TORCH_DEFAULT_THREADS: list[int] = []  # torch's own count, read before specgate first changed it


def set_threads(threads: int) -> None:
    """torch's intra-op thread count for every engine built after this call (0: torch's default).
    The CPU default runs one: with two OpenMP threads on two cores, a single busy core stalls every
    parallel region and a request takes four times as long (docs/baselines.md).

    The count is the process's, not the engine's: 0 restores torch's default, else an engine of
    another run in the same process (the lossless lab after the CPU default's cells) would inherit
    one thread and run 1.5x slower (measured: 4.1 s -> 6.3 s per 3000-request lossless cell).

    Raises EngineError when torch does not take the count."""
    import torch

    if not _TORCH_DEFAULT_THREADS:
        _TORCH_DEFAULT_THREADS.append(torch.get_num_threads())
    threads = threads or _TORCH_DEFAULT_THREADS[0]
    if torch.get_num_threads() == threads:
        return
    # vLLM's ngram proposer sets numba's thread count and restores it after every proposal; numba
    # shares torch's OpenMP runtime, so numba's default (one per core) would come back into torch.
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    # torch._C's setter: vLLM's CPU worker replaces torch.set_num_threads by a no-op once an
    # engine has started (it guards the thread binding of its worker processes, which an
    # in-process engine does not have).
    torch._C.set_num_threads(threads)
    if torch.get_num_threads() != threads:
        raise EngineError(f"threads = {threads}: torch runs {torch.get_num_threads()} threads after setting it")


_UNFREEZE_AT_EXIT = False


def shut_down(owner) -> None:
    """Stop the engine ``owner.llm`` (if any), drop it from ``owner`` and free what it held. The
    owner is passed, not the engine: no caller's frame may keep a reference while memory is
    released, or the closed engine is frozen alive (gc.freeze) instead of collected, and its
    successor faults in fresh pages during its timed requests."""
    llm, owner.llm = owner.llm, None
    if llm is None:
        return
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    try:
        if core is not None:
            with _collections_deferred():
                core.shutdown()
    finally:
        del llm, core
        release_memory()


@contextlib.contextmanager
def _collections_deferred():
    """gc.collect() does nothing inside the block. vLLM's engine shutdown collects twice (its
    cleanup_dist_env_and_memory, and again after dropping the profiling KV cache), 0.45 s each on 2
    cores, while the caller still holds the engine, so neither collection can free it: 0.9 s of the
    1.4 s a fixture engine took to close, about 60 s of `make bench`. release_memory collects once,
    after the engine is dropped (and empties the CUDA cache on a GPU, as vLLM's own collections are
    there for)."""
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        yield
    finally:
        gc.collect = collect


def release_memory() -> None:
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
