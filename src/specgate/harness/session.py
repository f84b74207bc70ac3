"""One pytest session's specgate state: the options (read once), the selected matrix, the runs
(ledger.py) and their verdicts; what tests are given before they run (preflight, prompts,
engines) is supply.py's, judging is judging.py's and the outputs at the end report/publish.py's.

Created by the plugin only when a test asks for specgate's fixtures or parameters, so a pytest
run that never uses specgate never imports this module (and with it numpy, vLLM helpers, ...).
"""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest

from specgate.core.metrics import RunMetrics
from specgate.core.results import RunResult
from specgate.engines.arguments import engine_key
from specgate.engines.errors import EngineError
from specgate.engines.pool import EnginePool
from specgate.gate.verdict import Verdict
from specgate.harness.judging import FinishedRun, Judging
from specgate.harness.ledger import Ledger
from specgate.harness.options import Options
from specgate.harness.supply import Supply
from specgate.matrix import conditions
from specgate.matrix import config as config_mod
from specgate.matrix.conditions import Condition
from specgate.matrix.errors import ConfigError, UnknownPairings
from specgate.records import environment as environment_mod
from specgate.records.baselines import BaselineStore
from specgate.report import publish
from specgate.report.tables import condition_line, judged_lines


def _usage_error(message: str):
    """Fail collection with this one line (CollectError prints no traceback); exit status 2."""
    raise pytest.Collector.CollectError(f"specgate: {message}")


class SpecgateSession:
    """What the fixtures ask for (engines, prompts, runs, verdicts), and the end of the session."""

    def __init__(self, config: pytest.Config):
        self.config = config  # for pytest's terminal only: every option is read once, into options
        self.log = functools.partial(publish.say, config)
        self.options = opt = Options.of(config)
        self.supply = Supply(EnginePool(log=self.log, stage_timers=opt.stage_timers, clock=opt.stage_clock,
                                        server_urls=opt.server_urls), self.log)
        self.judging = Judging(lambda: BaselineStore(opt.baselines, self.environment["hardware"]),
                               lambda: self.environment, opt.update_baselines)
        self.ledger = Ledger()
        self.messages: list[tuple[str, bool]] = []  # (line, is_error) for the terminal summary
        self.doc: dict | None = None  # the results document, built once at the end

    @functools.cached_property
    def environment(self) -> dict:
        return environment_mod.environment(self.options.hardware_tag, self.config.rootpath)

    @functools.cached_property
    def selection(self) -> tuple[list[Condition], dict[str, int]]:
        """The selected conditions in run order (those sharing an engine one after another: the CPU
        default's HumanEval pairing runs on the aligned pairing's engines), and each condition id's
        position in the whole unsharded matrix."""
        try:
            matrix = config_mod.load(self.options.config, self.options.overrides)
            matrix, order = conditions.select(matrix, self.options.pairings, self.options.shard)
        except UnknownPairings as exc:
            _usage_error(f"--specgate-pairing: {exc}")
        except ConfigError as exc:
            _usage_error(str(exc))
        return conditions.run_order(matrix.conditions(), engine_key), order

    @property
    def conditions(self) -> list[Condition]:
        return self.selection[0]

    # Runs and verdicts.

    def ensure_control(self, condition: Condition) -> None:
        """The no-speculation run on the same prompts and sampling, run now if its own test has not
        (deselected, or in another shard): a step of its own, before the condition's engine is built.
        A feature vLLM refuses is refused for the speculative cell too: its own run says so."""
        control = condition.control
        if self.ledger.has_control(condition) or control.id in self.judging.verdicts:
            return  # ran, or was judged without a run (vLLM refused it)
        try:
            self.ledger.record(control, self.supply.run(control))
        except EngineError as exc:
            if not exc.unsupported(control):
                raise

    def record(self, condition: Condition, result: RunResult) -> RunMetrics:
        """Keep a finished run for the results document -> its metrics."""
        return self.ledger.record(condition, result)

    def judge(self, finished: FinishedRun) -> Verdict:
        """Judge a run beside its control and plain cell (from the ledger); one line to the terminal."""
        condition, metrics = finished.condition, finished.metrics
        finished = replace(finished, control=None if condition.is_control else self.ledger.control(condition),
                           plain=self.ledger.plain(condition))
        self.ledger.note_code_path(condition, finished.calls)
        verdict = self.judging.judge(finished)
        speedup = metrics.speedup if not (condition.feature or condition.is_control) else None
        self.log(condition_line(condition.id, verdict, metrics.acceptance_rate, speedup))
        return verdict

    def judge_refused(self, condition: Condition, reason: str) -> Verdict:
        self.ledger.refuse(condition, reason)
        verdict = self.judging.judge_refused(condition, reason)
        self.log(condition_line(condition.id, verdict, None, None))
        return verdict

    # The end of the session.

    def finish(self, session: pytest.Session, exitstatus) -> None:
        """Save baselines and write the outputs before the exit status is final, so a file that
        could not be written fails the run."""
        self.supply.close()
        if not self.ledger:
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if interrupted:
            _drop_unfinished_benchmarks(session.config)
        saved, messages = self.judging.save(interrupted)
        # Also after an interrupt: the finished conditions are reported.
        self.doc = self.ledger.document(self.environment, self.judging.facts, self.judging.verdicts, self.selection[1],
                                        self.options.shard)
        written, said, _ = publish.write_outputs(self.doc, self.options)
        judged = [] if self.options.update_baselines else judged_lines(
            self.judging.verdicts, self.ledger.feature_cells(), self.environment, self.options.strict)
        self.messages += messages + said + judged
        saved = saved and not any(is_error for _, is_error in judged)
        if not (saved and written) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def terminal(self, reporter) -> None:
        if self.doc is not None:
            publish.terminal(reporter, self.doc, self.messages)


def _drop_unfinished_benchmarks(config: pytest.Config) -> None:
    """pytest-benchmark 5 crashes writing --benchmark-json when a benchmark was interrupted before
    its first round (min() of no timings); keep only the benchmarks that have timings."""
    bench_session = getattr(config, "_benchmarksession", None)
    if bench_session is not None and isinstance(getattr(bench_session, "benchmarks", None), list):
        bench_session.benchmarks = [b for b in bench_session.benchmarks
                                    if getattr(getattr(b, "stats", None), "data", None)]
