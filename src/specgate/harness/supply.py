"""What a benchmark test is given before it runs: its pairing's preflight verdict (checked once per
pairing, before any engine is built), its prompts, and live engines from the pool (the
condition's, the paired control, the machine reference). A failure here fails the test at setup
with the reason, apart from the verdicts; a feature cell vLLM refuses gets a Refused instead."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from specgate.core.results import RunResult
from specgate.engines.errors import EngineError
from specgate.engines.pool import EnginePool
from specgate.harness.failures import fail_setup
from specgate.matrix import preflight as preflight_mod
from specgate.matrix import prompts as prompts_mod
from specgate.matrix.conditions import Condition
from specgate.matrix.prompts import Prompt


def needs(condition: Condition) -> tuple[Condition, ...]:
    """The conditions whose pairings must pass preflight for this one to run: its control, itself."""
    return (condition,) if condition.is_control else (condition.control, condition)


@dataclass(frozen=True)
class Refused:
    """What engine_for gives a feature cell whose engine vLLM refused to build (matrix/features.py)."""

    reason: str


class Supply:
    def __init__(self, pool: EnginePool, log):
        self.pool, self.log = pool, log
        self.ready = preflight_mod.Checked()
        self._failed: set[str] = set()  # pairings whose preflight problem a test already showed in full

    def preflight_items(self, items: list) -> None:
        """Preflight every pairing the selected tests use, before any engine is built."""
        cells = [c for c in map(condition_of, items) if c is not None]
        for problem in self.ready.problems(c for cell in cells for c in needs(cell)):
            self.log(f"{problem}; its tests will error")

    @staticmethod
    def selected(items: list) -> int:
        """How many conditions these (collected, selected) tests run."""
        return len({c.id for c in map(condition_of, items) if c is not None})

    def require_ready(self, condition: Condition) -> None:
        """Fail the test with the reason when its pairing or its control's cannot run."""
        for c in needs(condition):
            problem = self.ready.problem(c.pairing)
            if problem and c.pairing.name in self._failed:
                fail_setup(f"specgate: pairing {c.pairing.name!r} cannot run: its preflight failed (the first of "
                           f"its tests shows why)")
            if problem:
                self._failed.add(c.pairing.name)
                fail_setup(problem)

    def engine_for(self, condition: Condition):
        """The live engine (or, for a feature cell vLLM refused, a Refused); fails the test with
        the reason when the pairing fails preflight or the engine fails to build."""
        self.require_ready(condition)
        return self._engine(self.pool.get, condition)

    def paired_control(self, condition: Condition):
        """The no-speculation engine to time beside this condition (None unless paired_control)."""
        return self._engine(self.pool.paired_control, condition)

    def _engine(self, get, condition: Condition):
        try:
            return get(condition)
        except EngineError as exc:
            if exc.unsupported(condition):
                return Refused(str(exc))  # a verdict of its own (unsupported), not an error
            problem = str(exc)
        pytest.fail(problem, pytrace=False)  # outside the except: vLLM's traceback stays out of the report

    def prompts(self, condition: Condition) -> list[Prompt]:
        try:
            return self.ready.prompts(condition, self.log)
        except prompts_mod.PromptSetError as exc:
            fail_setup(f"specgate: pairing {condition.pairing.name!r}: {exc}")

    def run(self, condition: Condition) -> RunResult:
        """Run a condition on its engine outside its own test (a control whose test is deselected
        or in another shard)."""
        return self.pool.get(condition).run(self.prompts(condition), condition)

    def machine_reference(self, condition: Condition):
        """The vLLM-free clock to time beside this condition's requests (None unless it has one)."""
        return self.pool.machine_reference(condition)

    def close(self) -> None:
        """Close every live engine (the end of the session, or an interrupt)."""
        self.pool.close()


def condition_of(item) -> Condition | None:
    """The condition a test item runs (its spec_condition parameter), or None."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("spec_condition") if callspec is not None else None
