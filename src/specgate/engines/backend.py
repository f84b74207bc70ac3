"""What the pool builds and a benchmark runs: one engine for one condition, in-process
(engine.Engine) or behind HTTP (serving.Server). The shared part lives here: the context
manager, the rounds loop, and the state the pool reads (``broken``, ``build_s``)."""

from __future__ import annotations

from specgate.core.results import RunResult, combine_rounds
from specgate.matrix.conditions import Condition
from specgate.matrix.prompts import Prompt


class Backend:
    def __init__(self, condition: Condition):
        self.condition = condition
        self.broken = False  # its state is unknown after a crash: the pool builds a new one
        self.build_s = 0.0
        self.progress = None  # callable(str) for progress lines on long conditions (the pool sets it)

    def __enter__(self):
        self.build()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def build(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def run(self, prompts: list[Prompt], condition: Condition | None = None, paired=None,
            reference=None) -> RunResult:
        """Every prompt under ``condition``'s sampling and mode (default: the one built for),
        ``rounds`` times; per-request latencies are the median over rounds. ``paired`` (the
        no-speculation engine) and ``reference`` (reference_timing.MachineReference) are timed
        beside each request in sequential mode."""
        condition = condition or self.condition
        return combine_rounds([self.run_once(prompts, condition, paired, reference)
                               for _ in range(condition.pairing.rounds)])

    def run_once(self, prompts: list[Prompt], condition: Condition | None = None, paired=None,
                 reference=None) -> RunResult:
        raise NotImplementedError
