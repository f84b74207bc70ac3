"""Every tolerance a pairing can set, in one table: its default, what it bounds, and whether a
no-speculation control carries it (timing tolerances do; acceptance ones have nothing to judge).
Read by the pairings file's validation (matrix/config.py), the controls (matrix/conditions.py) and
the checks (gate/); docs/pairings.md is tested against it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    default: float | None  # None: no check unless the pairing sets it
    meaning: str
    for_controls: bool


TOLERANCES = {
    "acceptance_rate": Tolerance(
        0.03, "largest allowed relative change, either way, of acceptance rate, mean acceptance length, "
              "per-position rates and draft steps per token", False),
    "latency": Tolerance(
        0.10, "largest allowed relative rise of request latency relative to the no-speculation control (paired "
              "geometric mean) or the machine reference, or against the baseline's latency when there is neither",
        True),
    "control_latency": Tolerance(0.5, "largest allowed relative rise of a control's own latency against its baseline",
                                 True),
    "blocked": Tolerance(
        0.03, "largest allowed rise, in points of wall time, of the share of each request the engine thread "
              "spent blocked: neither running nor waiting for a CPU (sleeps, locks, I/O; in-process CPU engines)",
        True),
    "cross_hardware_tokens": Tolerance(
        0.25, "share of requests whose tokens may differ from a baseline recorded on other hardware", True),
    "min_acceptance_rate": Tolerance(None, "floor on the draft acceptance rate at every k (absolute)", False),
}
# Keys older pairings files may still carry, with why they went (named in the error).
REMOVED_TOLERANCES = {
    "tokens_per_s": "batch throughput is not judged (one wall time per run has no spread to judge a change "
                    "against; docs/baselines.md)",
}
DEFAULTS = {key: t.default for key, t in TOLERANCES.items() if t.default is not None}
FOR_CONTROLS = tuple(key for key, t in TOLERANCES.items() if t.for_controls)


def with_defaults(given: dict[str, float] | None) -> dict[str, float]:
    """A pairing's tolerances over the defaults."""
    return {**DEFAULTS, **(given or {})}
