"""Progress lines during a condition's requests: a user watching a long run sees it move, and how
acceptance is going, without a line per request."""

from __future__ import annotations

import time
from typing import Callable

from specgate.core.metrics import acceptance_rate
from specgate.core.results import SpecCounters

EVERY_S = 5.0  # a line at most this often


class Progress:
    def __init__(self, say: Callable[[str], None] | None, condition_id: str, total: int,
                 so_far: Callable[[], SpecCounters]):
        self.say, self.condition_id, self.total, self.so_far = say, condition_id, total, so_far
        self.started = self.said = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if self.say is None or done == 0 or now - self.said < EVERY_S:
            return
        rate = acceptance_rate(self.so_far())
        acceptance = f", acceptance so far {rate:.3f}" if rate is not None else ""
        self.say(f"  {self.condition_id}: {done}/{self.total} requests, {now - self.started:.0f} s{acceptance}")
        self.said = now
