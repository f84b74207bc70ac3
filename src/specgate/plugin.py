"""pytest plugin: options, the pairing matrix as parameters, and the engine fixtures.

A test that takes ``spec_condition`` runs once per (pairing, method, k, mode) of the pairings
file, controls first; ``spec_engine`` gives the live engine for it (built once, reused by every
test of that condition, closed before the next engine is built); ``specgate_session`` holds
prompt sets, runs and metrics, and prints the metrics table at the end of the session.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from . import config as config_mod
from . import prompts as prompts_mod
from .config import Condition, ConfigError, control_key
from .engine import EnginePool
from .metrics import RunMetrics, summarize
from .prompts import Prompt
from .report import text_table
from .results import RunResult

_SESSION = pytest.StashKey["SpecgateSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("specgate", "speculative-decoding regression suite")
    group.addoption("--specgate-config", metavar="PATH",
                    help="pairings file (TOML); default: the specgate_config ini value")
    group.addoption("--specgate-pairing", metavar="NAME", action="append", default=[],
                    help="run only this pairing (repeatable)")
    group.addoption("--specgate-num-prompts", metavar="N", type=int,
                    help="override num_prompts of every pairing")
    group.addoption("--specgate-max-new-tokens", metavar="N", type=int,
                    help="override max_new_tokens of every pairing")
    group.addoption("--specgate-results", metavar="PATH",
                    help="write every run and its metrics to this JSON file")
    parser.addini("specgate_config", "pairings file used when --specgate-config is not given",
                  default="configs/cpu.toml")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SESSION] = SpecgateSession(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "spec_condition" not in metafunc.fixturenames:
        return
    conditions = metafunc.config.stash[_SESSION].conditions()
    # Session scope groups the tests of one condition together, so each engine is built once.
    metafunc.parametrize("spec_condition", conditions, ids=[c.id for c in conditions], scope="session")


@pytest.fixture(scope="session")
def specgate_session(request: pytest.FixtureRequest):
    session = request.config.stash[_SESSION]
    yield session
    session.pool.close()


@pytest.fixture
def spec_engine(spec_condition: Condition, specgate_session):
    """The live vLLM engine for this condition."""
    return specgate_session.pool.get(spec_condition)


@pytest.fixture
def spec_prompts(spec_condition: Condition, specgate_session) -> list[Prompt]:
    return specgate_session.prompts(spec_condition)


def _usage_error(message: str):
    """Fail collection with this one line (CollectError prints no traceback); exit status 2."""
    raise pytest.Collector.CollectError(f"specgate: {message}")


class SpecgateSession:
    """Per-pytest-session state: the matrix, the engine pool, prompt sets and recorded runs."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.pool = EnginePool(log=self.log)
        self.runs: dict[str, tuple[Condition, RunResult, RunMetrics]] = {}
        self._controls: dict[tuple, RunResult] = {}
        self._matrix: config_mod.Matrix | None = None

    def log(self, message: str) -> None:
        """Progress for long runs; shown even while pytest captures the test's output."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or self.config.get_verbosity() < 0:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.ensure_newline()
            reporter.write_line(f"specgate: {message}")

    def matrix(self) -> config_mod.Matrix:
        if self._matrix is None:
            opt = self.config.getoption
            path = opt("--specgate-config") or self.config.getini("specgate_config")
            path = Path(path)
            if not path.is_absolute() and not path.exists():
                path = self.config.rootpath / path
            overrides = {key: value for key, value in [("num_prompts", opt("--specgate-num-prompts")),
                                                       ("max_new_tokens", opt("--specgate-max-new-tokens"))]
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
            self._matrix = matrix
        return self._matrix

    def conditions(self) -> list[Condition]:
        return self.matrix().conditions()

    def prompts(self, condition: Condition) -> list[Prompt]:
        p = condition.pairing
        try:
            return prompts_mod.load(p.prompt_set, p.num_prompts, p.seed)
        except prompts_mod.PromptSetError as exc:
            _usage_error(f"pairing {p.name!r}: {exc}")

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

    def table(self) -> str:
        return text_table([(cid, m) for cid, (_, _, m) in self.runs.items()])

    def write_results(self, path: Path) -> None:
        doc = {cid: {"pairing": c.pairing.name, "method": c.method, "k": c.k, "mode": c.mode,
                     "metrics": m.as_dict(), "run": r.to_dict()} for cid, (c, r, m) in self.runs.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(path)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None or not session.runs:
        return
    terminalreporter.write_sep("=", "specgate metrics")
    terminalreporter.write_line(session.table())
    results = config.getoption("--specgate-results")
    if results:
        session.write_results(Path(results))
        terminalreporter.write_line(f"specgate: results written to {results}")
