"""One pytest session's specgate state: the options (read once), the selected matrix, the runs
(ledger.py) and their verdicts; what tests are given before they run (preflight, prompts,
engines) is supply.py's, judging is judging.py's and the outputs at the end report/publish.py's.

Created by the plugin only when a test asks for specgate's fixtures or parameters, so a pytest
run that never uses specgate never imports this module (and with it numpy, vLLM helpers, ...).
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace

import pytest

from specgate.core.metrics import RunMetrics
from specgate.core.outcomes import Outcome
from specgate.core.results import RunResult
from specgate.engines.arguments import engine_key
from specgate.engines.errors import EngineError
from specgate.engines.pool import EnginePool
from specgate.gate.verdict import Verdict
from specgate.harness.failures import Failures
from specgate.harness.judging import FinishedRun, Judging
from specgate.harness.ledger import Ledger
from specgate.harness.options import Options
from specgate.harness import supply as supply_mod
from specgate.harness.supply import Supply
from specgate.matrix import conditions
from specgate.matrix import config as config_mod
from specgate.matrix.conditions import Condition
from specgate.matrix.errors import ConfigError, UnknownPairings
from specgate.records import environment as environment_mod
from specgate.records import baselines as baselines_mod
from specgate.records import plan as plan_mod
from specgate.records.baselines import BaselineError, BaselineStore
from specgate.records.plan import PlanError
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
        self.failures = Failures()  # each failed test's outcome class, for the exit status
        self.at_finish = Outcome.PASS  # what the end of the session found (an output not written, ...)
        self.started = time.monotonic()
        self.selected: int | None = None  # conditions whose tests pytest kept (-k, deselection)

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
            planned = None if self.options.plan is None else plan_mod.shard_pairings(
                self.options.plan, self.options.config, self.options.shard)
            matrix, order = conditions.select(matrix, self.options.pairings, self.options.shard, planned)
        except UnknownPairings as exc:
            _usage_error(f"--specgate-pairing: {exc}")
        except (ConfigError, PlanError) as exc:
            _usage_error(str(exc))
        if planned is not None:
            self.log(f"shard {self.options.shard[0]}/{self.options.shard[1]} of {self.options.plan}: pairings "
                     f"{', '.join(p.name for p in matrix.pairings) or 'none'}")
        cells = matrix.conditions()
        if self.options.ks:
            try:
                cells = conditions.at_k(cells, self.options.ks)
            except UnknownPairings as exc:
                _usage_error(f"--specgate-k: {exc}")
        self._check_baseline_files()
        return conditions.run_order(cells, engine_key), order

    def _check_baseline_files(self) -> None:
        """Read both baseline files before any engine is built: a broken one would otherwise be
        found when the first run is judged, or, recording, when every run is done and cannot be saved."""
        for kind in (baselines_mod.PORTABLE, baselines_mod.TIMING):
            try:
                self.judging.baseline_file(kind)
            except BaselineError as exc:
                _usage_error(str(exc))

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
        self.log(self.progress() + condition_line(condition.id, verdict, metrics.acceptance_rate, speedup))
        return verdict

    def judge_refused(self, condition: Condition, reason: str) -> Verdict:
        self.ledger.refuse(condition, reason)
        verdict = self.judging.judge_refused(condition, reason)
        self.log(self.progress() + condition_line(condition.id, verdict, None, None))
        return verdict

    def progress(self) -> str:
        """"[12/115, 1m40s, about 12m left] ": conditions judged of those selected, time since the
        session began, and the time left if the rest take as long on average."""
        done, total = len(self.judging.verdicts), self.selected or len(self.conditions)
        elapsed = time.monotonic() - self.started
        left = elapsed / done * (total - done) if done else None
        return (f"[{done}/{total}, {_minutes(elapsed)}"
                + (f", about {_minutes(left)} left" if left is not None and done < total else "") + "] ")

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
        # The pairings file rides in the document's environment (summary.md's header names it); records
        # take only records.baselines.RECORDED of it.
        self.doc = self.ledger.document({**self.environment, "pairings": str(self.options.config)}, self.judging.facts,
                                        self.judging.verdicts, self.selection[1], self.options.shard)
        written, said, _ = publish.write_outputs(self.doc, self.options)
        judged = [] if self.options.update_baselines else judged_lines(
            self.judging.verdicts, self.ledger.feature_cells(), self.environment, self.options.strict)
        self.messages += messages + said + judged
        if not (saved and written):
            self.at_finish = Outcome.SETUP
        elif any(is_error for _, is_error in judged):
            self.at_finish = Outcome.NOT_JUDGED

    def note_report(self, item, report, excinfo) -> None:
        """A test phase's report: its failure class for the exit status, and a benchmark that failed
        before its verdict (setup, engine build, a crash) kept as an error in the results, so that a
        merged report of the shards cannot pass without it."""
        kind = self.failures.note(report, excinfo)
        condition = supply_mod.condition_of(item)
        if kind is None or condition is None or "specgate_benchmark" not in getattr(item, "fixturenames", ()):
            return
        if condition.id not in self.judging.verdicts:
            said = [line for line in str(report.longreprtext).splitlines() if line.strip()]
            self.ledger.error(condition, said[0] if said else "the test failed before its verdict", int(kind))

    def exit_status(self, pytest_status: int) -> int:
        """The run's exit status by outcome class (core/outcomes.py)."""
        return self.failures.exit_status(pytest_status, self.at_finish)

    def terminal(self, reporter) -> None:
        if self.doc is not None:
            publish.terminal(reporter, self.doc, self.messages)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _drop_unfinished_benchmarks(config: pytest.Config) -> None:
    """pytest-benchmark 5 crashes writing --benchmark-json when a benchmark was interrupted before
    its first round (min() of no timings); keep only the benchmarks that have timings."""
    bench_session = getattr(config, "_benchmarksession", None)
    if bench_session is not None and isinstance(getattr(bench_session, "benchmarks", None), list):
        bench_session.benchmarks = [b for b in bench_session.benchmarks
                                    if getattr(getattr(b, "stats", None), "data", None)]
