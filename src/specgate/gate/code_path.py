"""A code-path measurement (engines/code_path.py: every call one short request makes) against
its timing record's (pure): exact where the software versions are equal, a note where they are not."""

from __future__ import annotations

from specgate.gate.verdict import Check, RERECORD


def check(recorded: dict | None, now: dict | None) -> tuple[list[Check], str | None]:
    """The calls of one short request against the record's, when both were measured with the same
    software (versions differ: an upgrade changes the code by design, so only a note)."""
    if not recorded or not now:
        return [], None
    if recorded["versions"] != now["versions"]:
        differ = {k: f"{recorded['versions'].get(k)} -> {now['versions'].get(k)}"
                  for k in set(recorded["versions"]) | set(now["versions"])
                  if recorded["versions"].get(k) != now["versions"].get(k)}
        return [], f"code path not compared: other software ({', '.join(f'{k} {d}' for k, d in sorted(differ.items()))})"
    return [_check(changes(recorded, now), sum(recorded["counts"].values()), sum(now["counts"].values()))], None


def _check(moved: list[tuple[str, str, str]], base_total: int, new_total: int) -> Check:
    """Exact: the same software makes the same calls for the same request (engines/code_path.py), so any
    moved count means the installed code is not the recorded code (a patch, a plugin, a stray
    sleep or busy loop, an extra tensor operation); nothing to do with the machine's speed."""
    change = new_total / base_total - 1.0 if base_total else 0.0
    if not moved:
        return Check("code_path", True, base_total, new_total, change, None, 0.0,
                     f"code_path: the same {new_total} calls per request as recorded")
    shown = "; ".join(f"{name} {old} -> {new}" for name, old, new in moved[:5])
    more = f" (and {len(moved) - 5} more)" if len(moved) > 5 else ""
    return Check("code_path", False, base_total, new_total, change, None, 0.0,
                 f"code_path: with the same vLLM and libraries, one request now makes other calls than recorded: "
                 f"{shown}{more}; {base_total} -> {new_total} calls. The installed code differs from the recorded "
                 f"one (a patch, a plugin, a changed dependency); {RERECORD}")


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

def _range(measured: dict, name: str) -> tuple[float, float]:
    if name in measured["counts"]:
        return measured["counts"][name], measured["counts"][name]
    unstable = measured.get("unstable") or {}
    if isinstance(unstable, list):  # records written before ranges were kept: any count
        return (0, float("inf")) if name in unstable else (0, 0)
    return tuple(unstable.get(name, (0, 0)))


