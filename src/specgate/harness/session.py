"""One pytest session's specgate state: the options (read once), the selected matrix, the engine
pool, preflight results, prompt sets and the runs; judging (judging.py) and the outputs at the end
(report/publish.py) are delegated.

Created by the plugin only when a test asks for specgate's fixtures or parameters, so a pytest
run that never uses specgate never imports this module (and with it numpy, vLLM helpers, ...).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest

from specgate.matrix import config as config_mod
from specgate.matrix import conditions
from specgate.report import publish
from specgate.records import environment as environment_mod
from specgate.matrix import preflight as preflight_mod
from specgate.matrix import prompts as prompts_mod
from specgate.records.baselines import BaselineStore
from specgate.matrix.config import ConfigError
from specgate.matrix.conditions import Condition
from specgate.engines.errors import EngineError
from specgate.engines.arguments import engine_key
from specgate.harness.judging import Judging
from specgate.harness.ledger import Ledger
from specgate.core.metrics import RunMetrics
from specgate.harness.options import Options
from specgate.engines.pool import EnginePool
from specgate.matrix.prompts import Prompt
from specgate.report.tables import condition_line, judged_lines
from specgate.core.results import RunResult
from specgate.gate.verdict import Verdict


def needs(condition: Condition) -> tuple[Condition, ...]:
    """The conditions whose pairings must pass preflight for this one to run: its control, itself."""
    return (condition,) if condition.is_control else (condition.control, condition)


@dataclass(frozen=True)
class Refused:
    """What spec_engine gives a feature cell whose engine vLLM refused to build (matrix/features.py)."""

    reason: str


def _usage_error(message: str):
    """Fail collection with this one line (CollectError prints no traceback); exit status 2."""
    raise pytest.Collector.CollectError(f"specgate: {message}")


class SpecgateSession:
    """What the fixtures ask for (engines, prompts, runs, verdicts), and the end of the session."""

    def __init__(self, config: pytest.Config):
        self.config = config  # for pytest's terminal only: every option is read once, into options
        self.log = functools.partial(publish.say, config)
        self.options = opt = Options.read(config)
        self.pool = EnginePool(log=self.log, stage_timers=opt.stage_timers, clock=opt.stage_clock,
                               server_urls=opt.server_urls)
        self.judging = Judging(lambda: BaselineStore(opt.baselines, self.environment["hardware"]),
                               lambda: self.environment, opt.update_baselines)
        self.ledger = Ledger()
        self.ready = preflight_mod.Checked()
        self.messages: list[tuple[str, bool]] = []  # (line, is_error) for the terminal summary
        self.doc: dict | None = None  # the results document, built once at the end

    @functools.cached_property
    def environment(self) -> dict:
        return environment_mod.environment(self.options.hardware_tag, self.config.rootpath)

    @functools.cached_property
    def conditions(self) -> list[Condition]:
        """The selected matrix; conditions that share an engine run one after another (the CPU
        default's HumanEval pairing runs on the aligned pairing's engines)."""
        try:
            matrix = config_mod.load(self.options.config, self.options.overrides)
            matrix, self.ledger.order = conditions.select(matrix, self.options.pairings, self.options.shard)
        except ConfigError as exc:
            _usage_error(f"--specgate-pairing: {exc}" if str(exc).startswith("pairing(s)") else str(exc))
        return conditions.run_order(matrix.conditions(), engine_key)

    # Preflight and engines: what the fixtures ask for.

    def preflight_items(self, items: list) -> None:
        """Preflight every pairing the selected tests use, before any engine is built."""
        conditions = [c for c in map(_condition_of, items) if c is not None]
        for problem in self.ready.problems(c for condition in conditions for c in needs(condition)):
            self.log(f"{problem}; its tests will error")

    def require_ready(self, condition: Condition) -> None:
        """Fail the test with the reason when its pairing or its control's cannot run."""
        for c in needs(condition):
            problem = self.ready.problem(c.pairing)
            if problem:
                pytest.fail(problem, pytrace=False)

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
            if condition.feature and exc.refused:
                return Refused(str(exc))  # a verdict of its own (unsupported), not an error
            problem = str(exc)
        pytest.fail(problem, pytrace=False)  # outside the except: vLLM's traceback stays out of the report

    def prompts(self, condition: Condition) -> list[Prompt]:
        try:
            return self.ready.prompts(condition, self.log)
        except prompts_mod.PromptSetError as exc:
            pytest.fail(f"specgate: pairing {condition.pairing.name!r}: {exc}", pytrace=False)

    # Runs and verdicts.

    def ensure_control(self, condition: Condition) -> None:
        """The no-speculation run on the same prompts and sampling, run now if its own test has not
        (deselected, or in another shard): a step of its own, before the condition's engine is built.
        A feature vLLM refuses is refused for the speculative cell too: its own run says so."""
        if self.ledger.has_control(condition):
            return
        control = condition.control
        try:
            self.ledger.record(control, self.pool.get(control).run(self.prompts(control), control))
        except EngineError as exc:
            if not (control.feature and exc.refused):
                raise

    def judge(self, condition: Condition, result: RunResult, metrics: RunMetrics, prompts: list[Prompt],
              decode=None, again: RunResult | None = None, calls: dict | None = None) -> Verdict:
        control = None if condition.is_control else self.ledger.control(condition)
        verdict = self.judging.judge(condition, result, metrics, prompts, control, self.ledger.plain(condition),
                                     decode, again, calls)
        speedup = metrics.speedup if not (condition.feature or condition.is_control) else None
        self.log(condition_line(condition.id, verdict, metrics.acceptance_rate, speedup))
        return verdict

    def judge_refused(self, condition: Condition, reason: str) -> Verdict:
        self.ledger.refused[condition.id] = (condition, reason)
        verdict = self.judging.judge_refused(condition, reason)
        self.log(condition_line(condition.id, verdict, None, None))
        return verdict

    # The end of the session.

    def finish(self, session: pytest.Session, exitstatus) -> None:
        """Save baselines and write the outputs before the exit status is final, so a file that
        could not be written fails the run."""
        self.pool.close()
        if not self.ledger:
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if interrupted:
            _drop_unfinished_benchmarks(session.config)
        saved, messages = self.judging.save(interrupted)
        # Also after an interrupt: the finished conditions are reported.
        self.doc = self.ledger.document(self.environment, self.judging.facts, self.judging.verdicts)
        written, said, _ = publish.write_outputs(self.doc, self.options)
        judged = [] if self.options.update_baselines else judged_lines(
            self.judging.verdicts, self.ledger.feature_cells(), self.environment["hardware"], self.options.strict)
        self.messages += messages + said + judged
        saved = saved and not any(is_error for _, is_error in judged)
        if not (saved and written) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def terminal(self, reporter) -> None:
        if self.doc is not None:
            publish.terminal(reporter, self.doc, self.messages)


def _condition_of(item) -> Condition | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("spec_condition") if callspec is not None else None


def _drop_unfinished_benchmarks(config: pytest.Config) -> None:
    """pytest-benchmark 5 crashes writing --benchmark-json when a benchmark was interrupted before
    its first round (min() of no timings); keep only the benchmarks that have timings."""
    bench_session = getattr(config, "_benchmarksession", None)
    if bench_session is not None and isinstance(getattr(bench_session, "benchmarks", None), list):
        bench_session.benchmarks = [b for b in bench_session.benchmarks
                                    if getattr(getattr(b, "stats", None), "data", None)]
