"""One pytest session's specgate state: the matrix (options read here), the engine pool, prompt
sets, runs and their verdicts, staged baselines, and the outputs written at the end.

Created by the plugin only when a test asks for specgate's fixtures or parameters, so a pytest
run that never uses specgate never imports this module (and with it numpy, vLLM helpers, ...).
"""

from __future__ import annotations

import contextlib
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import baselines as baselines_mod
from . import config as config_mod
from . import correctness, export, gate, known_defects
from . import environment as environment_mod
from . import features as features_mod
from . import preflight as preflight_mod
from . import prompts as prompts_mod
from . import verdict as verdict_mod
from .baselines import BaselineError, BaselineStore
from .config import Condition, ConfigError, control_key
from .engine import EngineError
from .pool import EnginePool
from .metrics import RunMetrics, summarize
from .preflight import PreflightError
from .prompts import Prompt
from .publish import append_step_summary, write_report
from .report import TERMINAL_WIDTH, markdown_summary, terminal_table
from .results import RunResult
from .verdict import Verdict


def needs(condition: Condition) -> tuple[Condition, ...]:
    """The conditions whose pairings must pass preflight for this one to run: its control, itself."""
    return (condition,) if condition.is_control else (condition.control, condition)


@dataclass(frozen=True)
class Refused:
    """What spec_engine gives a feature cell whose engine vLLM refused to build (features.py)."""

    reason: str


def _server_urls(values: list[str]) -> dict[str, str]:
    urls = {}
    for value in values:
        cid, sep, url = value.partition("=")
        if not sep or not cid or not url.startswith(("http://", "https://")):
            raise pytest.UsageError(f"--specgate-server-url {value!r}: expected CONDITION_ID=http://HOST:PORT")
        urls[cid] = url
    return urls


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, sep, count = value.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise pytest.UsageError(f"--specgate-shard {value!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(index), int(count)


def _usage_error(message: str):
    """Fail collection with this one line (CollectError prints no traceback); exit status 2."""
    raise pytest.Collector.CollectError(f"specgate: {message}")


class SpecgateSession:
    """Per-pytest-session state: the matrix, the engine pool, prompt sets and recorded runs."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.pool = EnginePool(log=self.log, stage_timers=not config.getoption("--specgate-no-stage-timers"),
                               clock=config.getoption("--specgate-stage-clock"),
                               server_urls=_server_urls(config.getoption("--specgate-server-url")))
        self.order: dict[str, int] = {}  # condition id -> position in the whole (unsharded) matrix
        self.runs: dict[str, tuple[Condition, RunResult, RunMetrics]] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.refused: dict[str, tuple[Condition, str]] = {}  # feature cells vLLM refused, with its reason
        self.staged: dict[str, dict] = {}
        self._controls: dict[tuple, RunResult] = {}
        self._matrix: config_mod.Matrix | None = None
        self._environment: dict | None = None
        self._files: dict[str, object] = {}  # "portable" / "timing" -> BaselineFile or BaselineError
        self.staged_timing: dict[str, dict] = {}
        self._preflight: dict[str, str | None] = {}
        self._said_dropped: set[str] = set()
        self.messages: list[tuple[str, bool]] = []  # (line, is_error) for the terminal summary
        self.summary = ""
        self.doc: dict | None = None  # the results document, once write_outputs built it

    def _path_option(self, option: str, ini: str) -> Path:
        path = Path(self.config.getoption(option) or self.config.getini(ini))
        return path if path.is_absolute() or path.exists() else self.config.rootpath / path

    @property
    def reports_folder(self) -> Path | None:
        if self.config.getoption("--specgate-no-reports"):
            return None
        return self._path_option("--specgate-reports", "specgate_reports")

    @property
    def environment(self) -> dict:
        if self._environment is None:
            self._environment = environment_mod.environment(self.config.getoption("--specgate-hardware-tag"),
                                                            self.config.rootpath)
        return self._environment

    @property
    def store(self) -> BaselineStore:
        return BaselineStore(self._path_option("--specgate-baselines", "specgate_baselines"),
                             self.environment["hardware"])

    def baseline_file(self, kind: str):
        """The portable or this hardware's timing file, loaded once; a broken file fails every
        benchmark that needs it."""
        if kind not in self._files:
            try:
                self._files[kind] = self.store.portable() if kind == baselines_mod.PORTABLE else self.store.timing()
            except BaselineError as exc:
                self._files[kind] = exc
        found = self._files[kind]
        if isinstance(found, BaselineError):
            raise found
        return found

    def facts(self, condition: Condition) -> dict:
        """The condition's facts, with the prompts max_prompt_tokens dropped: another tokenizer or
        data file that drops others is another workload."""
        dropped = None
        if "max_prompt_tokens" in condition.pairing.prompt_options:
            try:
                dropped = preflight_mod.prompt_sample(condition.pairing)[1]
            except prompts_mod.PromptSetError:
                pass  # the condition's tests fail with the reason (prompts())
        return baselines_mod.condition_facts(condition, dropped)

    def judge(self, condition: Condition, result: RunResult, metrics: RunMetrics, prompts: list[Prompt],
              decode=None, again: RunResult | None = None) -> Verdict:
        """Stage the run as a baseline (--specgate-update-baselines) or judge it against the stored
        ones. ``again``: a feature cell's second run, when its feature checks reproducibility."""
        facts = self.facts(condition)
        control = None if condition.is_control else self.control_result(condition)
        ids = [p.id for p in prompts]
        problems = correctness.in_run_problems(condition, result, control, ids, decode)
        if condition.feature:
            plain = self.runs.get(condition.plain.id)
            problems += features_mod.problems(condition.feature, result, control, plain and plain[1], again, ids,
                                              decode)
        if self.config.getoption("--specgate-update-baselines"):
            if problems:
                verdict = verdict_mod.combine([], problems, prefix="not recorded: ")
            else:
                self.staged[condition.id] = baselines_mod.portable_record(facts, self.environment, metrics.as_dict(),
                                                                          result.to_dict())
                if not condition.feature:  # a feature cell's subject is correctness, not its timing
                    self.staged_timing[condition.id] = baselines_mod.timing_record(
                        facts, self.environment, metrics.as_dict(), result.to_dict(),
                        None if control is None else control.to_dict())
                verdict = Verdict("recorded", f"staged as the baseline for {condition.id}")
        else:
            portable = self.baseline_file(baselines_mod.PORTABLE).find(condition.id, facts)
            elsewhere = [t for t in self.store.timing_hardware() if t != self.environment["hardware"]]
            timing = ((None, "a feature cell's subject is correctness") if condition.feature else
                      self.baseline_file(baselines_mod.TIMING).find_timing(condition.id, facts, elsewhere))
            verdict = gate.judge_condition(result, control, self.environment, condition.pairing.tolerances,
                                           portable, timing, ids, problems,
                                           in_run=(f"feature {condition.feature}",) if condition.feature else ())
        self.verdicts[condition.id] = verdict = self._known_defect(condition, verdict)
        self._said(condition, verdict, metrics)
        return verdict

    def _said(self, condition: Condition, verdict: Verdict, metrics: RunMetrics | None) -> None:
        """One line per condition as it ends: verdict, acceptance, speedup, the first failed check."""
        parts = [f"{condition.id}: {verdict.status}"]
        if metrics is not None and metrics.acceptance_rate is not None:
            parts.append(f"acceptance {metrics.acceptance_rate:.3f}")
        if metrics is not None and metrics.speedup is not None and not condition.feature and not condition.is_control:
            parts.append(f"speedup {metrics.speedup:.2f}")
        failed = [c.metric for c in verdict.failures]
        why = ""
        if verdict.status in ("fail", "known-defect", "unsupported", "no-baseline"):
            short = verdict.reason[:60] + ("..." if len(verdict.reason) > 60 else "")
            why = f" ({failed[0]} failed)" if failed else f" ({short})"
        self.log(", ".join(parts) + why)

    def judge_refused(self, condition: Condition, reason: str) -> Verdict:
        """A feature cell vLLM refused: recorded as unsupported, or judged against the record."""
        facts = self.facts(condition)
        self.refused[condition.id] = (condition, reason)
        if self.config.getoption("--specgate-update-baselines"):
            self.staged[condition.id] = baselines_mod.unsupported_record(facts, self.environment, reason)
            verdict = Verdict("recorded", f"staged as unsupported: {reason}")
        else:
            portable = self.baseline_file(baselines_mod.PORTABLE).find(condition.id, facts)
            verdict = gate.judge_refused(reason, portable, self.environment)
        self.verdicts[condition.id] = verdict
        self._said(condition, verdict, None)
        return verdict

    @staticmethod
    def _known_defect(condition: Condition, verdict: Verdict) -> Verdict:
        """A feature cell that a known vLLM defect breaks on this build is an expected failure;
        if it passes there, the defect is fixed and its entry must go (strict, like xfail)."""
        keys = condition.feature_setting.known_defects
        if condition.is_control or not keys or verdict.status not in ("pass", "fail"):
            return verdict
        defect = known_defects.present(keys)
        if defect is None:
            return verdict
        if verdict.status == "fail":
            return Verdict("known-defect", f"{defect.mark_reason()}. Failed as expected: {verdict.reason}",
                           verdict.checks, verdict.notes)
        return Verdict("fail", f"{defect.mark_reason()}: it passed; remove {defect.key!r} from feature "
                               f"{condition.feature!r} in specgate/features.py", verdict.checks, verdict.notes)

    def preflight(self, condition: Condition) -> str | None:
        """The reason this condition's pairing cannot run (checked once per pairing), or None."""
        p = condition.pairing
        if p.name not in self._preflight:
            try:
                preflight_mod.check(p)
                self._preflight[p.name] = None
            except PreflightError as exc:
                self._preflight[p.name] = f"specgate: {exc}"
        return self._preflight[p.name]

    def paired_control(self, condition: Condition):
        """The no-speculation engine to time beside this condition (None unless paired_control)."""
        try:
            return self.pool.paired_control(condition)
        except EngineError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    def require_ready(self, condition: Condition) -> None:
        for c in needs(condition):
            problem = self.preflight(c)
            if problem:
                pytest.fail(problem, pytrace=False)

    def save_baselines(self, interrupted: bool) -> bool:
        """Write the staged records (never after an interrupt: a partial sweep must not replace
        the stored baselines); False when something that should have been saved was not."""
        if not self.staged:
            return True
        if interrupted:
            self.messages.append((f"run interrupted: {len(self.staged)} staged baseline records NOT saved "
                                  f"({', '.join(self.staged)}); {self.store.folder} is unchanged", True))
            return False
        try:
            written = self.store.save(self.staged, self.staged_timing)
        except BaselineError as exc:  # also an unwritable file: BaselineFile.update says so
            self.messages.append((f"baselines NOT saved: {exc}", True))
            return False
        self.messages.append((f"{len(self.staged)} baseline records written to "
                              f"{' and '.join(str(p) for p in written)}", False))
        return True

    def judged_summary(self) -> list[tuple[str, bool]]:
        """One line on what was judged (acceptance, timing), and whether a strict run must fail."""
        verdicts = [(cid, v) for cid, v in self.verdicts.items()]
        if not verdicts or all(v.status in ("recorded", "known-defect", "unsupported") for _, v in verdicts) \
                or self.config.getoption("--specgate-update-baselines"):
            return []
        unjudged = [cid for cid, v in verdicts if v.status == "no-baseline" or (
            v.status not in ("unsupported", "known-defect")
            and any(n.startswith("acceptance/tokens not judged") for n in v.notes))]
        timing = [n for cid, v in verdicts for n in v.notes
                  if n.startswith("timing") and not (cid in self.runs and self.runs[cid][0].feature)]
        strict = self.config.getoption("--specgate-strict")
        lines = [(f"acceptance and tokens judged for {len(verdicts) - len(unjudged)} of {len(verdicts)} conditions"
                  + (f"; NOT judged: {', '.join(unjudged[:5])}{' ...' if len(unjudged) > 5 else ''}" if unjudged else ""),
                  bool(unjudged) and strict)]
        untimed = [n for n in timing if n.startswith("timing not judged")]
        if untimed:
            lines.append((f"timing NOT judged for {len(untimed)} of {len(timing)} conditions: {untimed[0].split(': ', 1)[1]}", False))
        elif timing:
            lines.append((f"timing judged for all {len(timing)} conditions on {self.environment['hardware']}, "
                          f"relative to the no-speculation control of the same run", False))
        return lines

    def log(self, message: str) -> None:
        """Progress for long runs; shown even while pytest captures the test's output."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or self.config.get_verbosity() < -1:  # -q keeps progress; -qq silences it
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(message if message.startswith("specgate:") else f"specgate: {message}")

    def matrix(self) -> config_mod.Matrix:
        if self._matrix is None:
            opt = self.config.getoption
            path = self._path_option("--specgate-config", "specgate_config")
            overrides = {key: value for key, value in [("num_prompts", opt("--specgate-num-prompts")),
                                                       ("max_new_tokens", opt("--specgate-max-new-tokens")),
                                                       ("rounds", opt("--specgate-rounds"))]
                         if value is not None}
            try:
                matrix = config_mod.load(path, overrides)
            except ConfigError as exc:
                _usage_error(str(exc))
            wanted = opt("--specgate-pairing")
            if wanted:
                unknown = set(wanted) - {p.name for p in matrix.pairings}
                if unknown:
                    _usage_error(f"--specgate-pairing {sorted(unknown)} not in {path}; "
                                 f"pairings there: {', '.join(p.name for p in matrix.pairings)}")
                matrix = config_mod.Matrix(matrix.source, tuple(p for p in matrix.pairings if p.name in wanted))
            self.order = {c.id: i for i, c in enumerate(matrix.conditions())}
            shard = parse_shard(opt("--specgate-shard"))
            if shard is not None:
                index, count = shard
                matrix = config_mod.Matrix(matrix.source, matrix.pairings[index::count])
            self._matrix = matrix
        return self._matrix

    def conditions(self) -> list[Condition]:
        return self.matrix().conditions()

    def prompts(self, condition: Condition) -> list[Prompt]:
        p = condition.pairing
        try:
            found, dropped = preflight_mod.prompt_sample(p)
            if dropped and p.name not in self._said_dropped:
                self._said_dropped.add(p.name)
                self.log(f"pairing {p.name!r}: {len(dropped)} prompts of set {p.prompt_set!r} are longer than "
                         f"max_prompt_tokens={p.prompt_options['max_prompt_tokens']} and were dropped "
                         f"({', '.join(dropped[:3])}{', ...' if len(dropped) > 3 else ''})")
            if condition.feature_setting.repeat_prompts:
                found = found + [Prompt(f"{x.id}#again", x.text) for x in found]
            return found
        except prompts_mod.PromptSetError as exc:
            pytest.fail(f"specgate: pairing {p.name!r}: {exc}", pytrace=False)

    def run(self, condition: Condition) -> RunResult:
        """Run the condition's prompt set on its engine (built if needed)."""
        return self.pool.get(condition).run(self.prompts(condition), condition)

    def control_result(self, condition: Condition) -> RunResult:
        """The no-speculation run on the same prompts and sampling; run now if not yet run."""
        key = control_key(condition.control)
        if key not in self._controls:
            self.record(condition.control, self.run(condition.control))
        return self._controls[key]

    def record(self, condition: Condition, result: RunResult) -> RunMetrics:
        if condition.is_control:
            self._controls[control_key(condition)] = result
            metrics = summarize(result, result)
        else:
            metrics = summarize(result, self.control_result(condition))
        self.runs[condition.id] = (condition, result, metrics)
        return metrics

    def write_outputs(self) -> bool:
        """Report folder, results file, tracker files and the CI step summary; False if any failed."""
        opt = self.config.getoption
        self.doc = doc = self.results()
        self.summary, ok = markdown_summary(doc), True
        outputs = []
        if self.reports_folder is not None:
            outputs.append(("report", lambda: self._write_report(doc)))
        if opt("--specgate-results"):
            path = Path(opt("--specgate-results"))
            outputs.append(("results", lambda: baselines_mod.write_atomic(path, json.dumps(doc, indent=1) + "\n")
                            or f"results written to {path}"))
        if opt("--specgate-github-benchmark"):
            outputs.append(("github-action-benchmark files", lambda: self._write_github(doc)))
        outputs.append(("step summary", lambda: (lambda p: p and f"summary appended to {p}")(
            append_step_summary(self.summary))))
        for what, write in outputs:
            try:
                said = write()
            except (BaselineError, OSError) as exc:
                reason = str(exc) if isinstance(exc, BaselineError) else (exc.strerror or str(exc))
                self.messages.append((f"specgate: {what} NOT written: {reason}", True))
                ok = False
                continue
            if said:
                self.messages.append((f"specgate: {said}", False))
        return ok

    def _write_report(self, doc: dict) -> str:
        self.summary, written = write_report(doc, self.reports_folder)
        return (f"report ({len(written)} files: results.json, {len(written) - 2} charts, summary.md) "
                f"written to {self.reports_folder}")

    def _write_github(self, doc: dict) -> str:
        folder = Path(self.config.getoption("--specgate-github-benchmark"))
        for name, entries in export.github_benchmark(doc).items():
            baselines_mod.write_atomic(folder / name, json.dumps(entries, indent=1) + "\n")
        return f"github-action-benchmark files written to {folder}"

    def results(self) -> dict:
        entries = {cid: (c, r, m) for cid, (c, r, m) in self.runs.items()}
        entries.update({cid: (c, None, None) for cid, (c, _) in self.refused.items()})
        runs = {}
        # Matrix order, not run order: shards merged by `specgate merge` then read like one run.
        for cid, (c, r, m) in sorted(entries.items(), key=lambda kv: self.order.get(kv[0], len(self.order))):
            v = self.verdicts.get(cid)
            runs[cid] = {"conditions": self.facts(c), "tolerances": c.pairing.tolerances,
                         "control": None if c.is_control else c.control.id, "order": self.order.get(cid),
                         "metrics": {} if m is None else m.as_dict(), "run": None if r is None else r.to_dict(),
                         **({"unsupported": self.refused[cid][1]} if cid in self.refused else {}),
                         "verdict": None if v is None else {
                             "status": v.status, "reason": v.reason, "notes": list(v.notes),
                             "checks": [{"metric": x.metric, "passed": x.passed, "change": x.change,
                                         "interval": x.interval, "tolerance": x.tolerance} for x in v.checks]}}
        return {"schema": baselines_mod.SCHEMA, "environment": self.environment, "runs": runs}

    # What the plugin's hooks and fixtures ask of the session.

    def preflight_items(self, items: list) -> None:
        """Preflight every pairing the selected tests use, before any engine is built."""
        seen = set()
        for item in items:
            condition = getattr(item, "callspec", None) and item.callspec.params.get("spec_condition")
            if condition is None:
                continue
            for c in needs(condition):
                if c.pairing.name not in seen:
                    seen.add(c.pairing.name)
                    problem = self.preflight(c)
                    if problem:
                        self.log(f"{problem}; its tests will error")

    def engine_for(self, condition: Condition):
        """The live engine (or, for a feature cell vLLM refused, a Refused); fails the test with
        the reason when the pairing fails preflight or the engine fails to build."""
        self.require_ready(condition)
        try:
            return self.pool.get(condition)
        except EngineError as exc:
            if condition.feature and exc.refused:
                return Refused(str(exc))  # a verdict of its own (unsupported), not an error
            problem = str(exc)
        pytest.fail(problem, pytrace=False)  # outside the except: vLLM's traceback stays out of the report

    def finish(self, session: pytest.Session, exitstatus) -> None:
        """Save baselines and write the report before the exit status is final, so a file that
        could not be written fails the run."""
        self.pool.close()
        if not (self.runs or self.refused):
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if interrupted:
            _drop_unfinished_benchmarks(session.config)
        saved = self.save_baselines(interrupted)
        written = self.write_outputs()  # also after an interrupt: the finished conditions are reported
        judged = self.judged_summary()
        self.messages += judged
        if any(is_error for _, is_error in judged):
            self.messages.append(("strict: conditions without a comparable baseline fail this run "
                                  "(--specgate-strict)", True))
            saved = False
        if not (saved and written) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def terminal(self, reporter) -> None:
        """At most 100 columns (report.terminal_table); the full Markdown is in summary.md."""
        if not (self.runs or self.refused):
            return
        reporter.write_sep("=", "specgate verdicts")
        reporter.write_line(terminal_table(self.doc or self.results()))  # built once by write_outputs
        for line, is_error in self.messages:
            text = line if line.startswith("specgate:") else f"specgate: {line}"
            # Paths are never broken (they are copied from here); everything else wraps at 100 columns.
            for part in textwrap.wrap(text, TERMINAL_WIDTH, subsequent_indent="    ", break_on_hyphens=False,
                                      break_long_words=False):
                reporter.write_line(part, red=is_error)


def _drop_unfinished_benchmarks(config: pytest.Config) -> None:
    """pytest-benchmark 5 crashes writing --benchmark-json when a benchmark was interrupted before
    its first round (min() of no timings); keep only the benchmarks that have timings."""
    bench_session = getattr(config, "_benchmarksession", None)
    if bench_session is not None and isinstance(getattr(bench_session, "benchmarks", None), list):
        bench_session.benchmarks = [b for b in bench_session.benchmarks
                                    if getattr(getattr(b, "stats", None), "data", None)]
