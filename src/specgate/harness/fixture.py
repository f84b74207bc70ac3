"""What a benchmark test holds (the ``specgate_benchmark`` fixture), as pytest-benchmark gives its
tests a fixture object instead of its session: one condition, run under pytest-benchmark's
timer with what is timed beside it (paired control, machine reference), recorded, checked
(specgate.gate.sanity), judged (in-run correctness, then the baselines), and turned into the test's
outcome: pass, fail with the reason, skip or fail (strict) without a baseline, skip when vLLM
refuses a feature cell as recorded, xfail for a known vLLM defect."""

from __future__ import annotations

from typing import Callable

import pytest

from specgate.core.results import RunResult, combine_rounds
from specgate.engines import known_defects
from specgate.engines.engine import Engine
from specgate.engines.errors import EngineError
from specgate.gate import sanity
from specgate.gate.verdict import Verdict
from specgate.harness.failures import fail_not_judged, fail_setup
from specgate.harness.judging import FinishedRun
from specgate.harness.session import SpecgateSession
from specgate.harness.supply import Refused
from specgate.matrix.conditions import Condition
from specgate.records.baselines import BaselineError


class SpecgateBenchmark:
    """Made by the fixture before the test (so a pairing that cannot run errors at setup, apart from
    the verdicts): the control has run, the paired control and the condition's engine are built."""

    def __init__(self, session: SpecgateSession, condition: Condition):
        self.session, self.condition = session, condition
        session.supply.require_ready(condition)
        if not condition.is_control:
            # Its own test may be deselected (-k) or in another shard: run it first, explicitly.
            session.ensure_control(condition)
        self.paired = session.supply.paired_control(condition)  # before the condition's engine (pool.paired_control)
        # The engine's warm-up requests already meet a defect the cell works around.
        with known_defects.reference_path(condition.works_around):
            self.engine = session.supply.engine_for(condition)
        self.prompts = session.supply.prompts(condition)

    def __call__(self, benchmark) -> Verdict:
        session, condition, engine, prompts = self.session, self.condition, self.engine, self.prompts
        benchmark.group = condition.pairing.target_name
        if isinstance(engine, Refused):
            return self._conclude(lambda: session.judge_refused(condition, engine.reason))
        beside = {"paired": self.paired, "reference": session.supply.machine_reference(condition)}
        rounds: list[RunResult] = []
        try:
            # One pytest-benchmark sample per round of the prompt set; the rounds combine into one run.
            with known_defects.reference_path(condition.works_around):
                benchmark.pedantic(lambda: rounds.append(engine.run_once(prompts, condition, **beside)),
                                   rounds=condition.pairing.rounds, iterations=1)
            result = combine_rounds(rounds)
        except EngineError as exc:
            if exc.unsupported(condition):
                refused = str(exc)
                return self._conclude(lambda: session.judge_refused(condition, refused))
            raise
        metrics = session.record(condition, result)
        benchmark.extra_info.update({"condition": condition.id, "method": condition.method, **metrics.as_dict(),
                                     "counters": result.counters.__dict__})
        found = sanity.problems(condition, result, metrics)
        if found:  # broken counters or a truncated run: nothing to judge against any record
            pytest.fail(f"{condition.id}: " + "; ".join(found), pytrace=False)
        again = engine.run(prompts, condition) if condition.feature_setting.output_check == "reproducible" else None
        # After the timed run, untimed: what one short request calls (engines/code_path.py).
        calls = (engine.code_path(prompts[0], condition) if isinstance(engine, Engine) and not condition.feature
                 and condition.mode == "sequential" else None)
        finished = FinishedRun(condition, result, metrics, prompts, again=again, decode=_decoder(engine), calls=calls,
                               **_tokens(engine))
        verdict = self._conclude(lambda: session.judge(finished))
        benchmark.extra_info["verdict"] = verdict.status
        return verdict

    def _conclude(self, judge: Callable[[], Verdict]) -> Verdict:
        """Judge, then turn the verdict into the test's outcome."""
        condition = self.condition
        try:
            verdict = judge()
        except BaselineError as exc:
            fail_setup(str(exc))
        if verdict.status == "no-baseline":
            if self.session.options.strict:
                fail_not_judged(f"{condition.id}: no comparable baseline (--specgate-strict): {verdict.reason}")
            pytest.skip(verdict.reason)
        if verdict.status == "fail":
            pytest.fail(f"{condition.id}: {verdict.reason}", pytrace=False)
        if verdict.status == "unsupported":
            pytest.skip(f"unsupported: {verdict.reason}")
        if verdict.status == "known-defect":
            pytest.xfail(verdict.reason)
        return verdict


def _tokens(engine) -> dict:
    """The target tokenizer's encoder and EOS id, for the checks of where requests end (in-process engines)."""
    llm = getattr(engine, "llm", None)
    if llm is None:
        return {}
    return {"encode": engine.encoder(), "eos_token_id": llm.get_tokenizer().eos_token_id}


def _decoder(engine) -> Callable[[list[int]], str] | None:
    """Token ids -> text, for the context in a token mismatch's message (in-process engines)."""
    llm = getattr(engine, "llm", None)
    if llm is None:
        return None
    tokenizer = llm.get_tokenizer()
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=True)
