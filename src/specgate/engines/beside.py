"""What is timed beside each request of a sequential run, so that its latency is judged as a ratio
from which machine-wide drift cancels: the same prompt on the paired no-speculation engine
(paired_control), or, for a control, the same tokens through the machine reference
(reference_timing). Even requests run it before, odd ones after, so neither side always
follows the other (a warm cache or a clock-frequency change would favour one).

speculative_clock() is the process's clock with that time taken out: a run's wall time, and
pytest-benchmark's timer of specgate's benchmarks, are the condition's own requests only."""

from __future__ import annotations

import time
from typing import Any, Callable

from specgate.matrix.conditions import Condition
from specgate.matrix.prompts import Prompt


_beside_s = 0.0  # seconds this process spent timing requests beside others


def speculative_clock() -> float:
    """time.perf_counter() (seconds) minus every second spent timing requests beside a run's own:
    differences of it time what a condition's engine did, with the paired control's and the machine
    reference's requests taken out."""
    return time.perf_counter() - _beside_s


class Beside:
    def __init__(self, condition: Condition, paired=None, reference=None,
                 encode: Callable[[str], list[int]] | None = None):
        self.condition, self.paired, self.reference, self.encode = condition, paired, reference, encode

    def around(self, index: int, prompt: Prompt, text: str, request: Callable[[], Any]) -> tuple[Any, dict]:
        """``request()``'s result, and the latency timed beside it as RequestRecord fields."""
        before = self._seconds(index, prompt, text) if index % 2 == 0 else None
        result = request()
        seconds = before if index % 2 == 0 else self._seconds(index, prompt, text)
        if self.paired is not None:
            return result, {"control_latency": seconds}
        return result, ({"reference_latency": seconds} if self.reference is not None else {})

    def _seconds(self, index: int, prompt: Prompt, text: str) -> float | None:
        global _beside_s
        started = time.perf_counter()
        try:
            return self._timed(index, prompt, text)
        finally:
            _beside_s += time.perf_counter() - started

    def _timed(self, index: int, prompt: Prompt, text: str) -> float | None:
        if self.paired is not None:
            return self.paired.timed(self.condition.control, prompt, index)[1]
        if self.reference is not None:
            return self.reference.seconds(self.encode(text), self.condition.pairing.max_new_tokens)
        return None
