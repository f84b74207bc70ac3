"""pytest plugin: specgate's options, hooks and fixtures, and nothing else.

Inert until used: importing it (every pytest run in an environment where specgate is installed
does, through the pytest11 entry point) loads only pytest and the standard library, and it
changes no process state. The session (specgate.harness.session) is created when a test asks for
specgate's parameters or fixtures; only then are its SIGTERM and SIGINT handlers installed.

A test that takes ``spec_condition`` runs once per (pairing, method, k, mode, feature) of the
pairings file, controls first; ``spec_engine`` gives the live engine for it (built once, reused
by every test of that condition, closed before the next engine is built), ``spec_prompts`` the
condition's prompts (after its pairing's preflight); ``specgate_session``
holds prompt sets, runs and verdicts, and prints the verdict table at the end of the session.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from specgate.harness.session import SpecgateSession

# Deprecation notices the engine stack raises inside vLLM, torch and numba while specgate drives it
# (dozens per run, the same few lines): hidden on specgate's own tests only, never on a user's others.
# The project's pyproject.toml filters the same list for its own tests (tests/harness/test_plugin.py
# keeps the two equal).
ENGINE_WARNINGS = (
    "ignore::DeprecationWarning:torch.*",
    "ignore::FutureWarning:vllm.*",
    "ignore::DeprecationWarning:vllm.*",
    "ignore:.*:numba.NumbaPendingDeprecationWarning",
)

_SESSION = pytest.StashKey["SpecgateSession"]()
_HANDLERS = pytest.StashKey[dict]()  # signal -> the handler specgate replaced
_SIGNALLED = pytest.StashKey[list]()  # the signals received, even if their KeyboardInterrupt was lost


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("specgate", "speculative-decoding regression suite")
    group.addoption("--specgate-config", metavar="PATH",
                    help="pairings file (TOML); default: the specgate_config ini value")
    group.addoption("--specgate-pairing", metavar="NAME", action="append", default=[],
                    help="run only this pairing (repeatable)")
    group.addoption("--specgate-k", metavar="K[,K...]", action="append", default=[],
                    help="run only the conditions at these k (with the controls they need; repeatable); unlike "
                         "-k k1, never also k10")
    group.addoption("--specgate-num-prompts", metavar="N", type=int,
                    help="override num_prompts of every pairing")
    group.addoption("--specgate-max-new-tokens", metavar="N", type=int,
                    help="override max_new_tokens of every pairing")
    group.addoption("--specgate-rounds", metavar="N", type=int,
                    help="override rounds (runs of the prompt set per condition) of every pairing")
    group.addoption("--specgate-results", metavar="PATH",
                    help="write every run, its metrics and verdict to this JSON file")
    group.addoption("--specgate-update-baselines", action="store_true",
                    help="record this run's results as the baselines instead of comparing with them")
    group.addoption("--specgate-strict", action="store_true",
                    help="fail a condition that has no comparable baseline, and a run that judged nothing "
                         "(use in CI: a skipped verdict is a green light for a regression)")
    group.addoption("--specgate-baselines", metavar="DIR",
                    help="baseline folder; default: the specgate_baselines ini value")
    group.addoption("--specgate-hardware-tag", metavar="TAG",
                    help="hardware tag naming the baseline file (default: detected, e.g. cpu-amd-epyc-avx512-2c)")
    group.addoption("--specgate-github-benchmark", metavar="DIR",
                    help="also write github-action-benchmark files (customBiggerIsBetter / customSmallerIsBetter)")
    group.addoption("--specgate-reports", metavar="DIR",
                    help="report folder: results.json, charts (PNG), summary.md; default: the specgate_reports "
                         "ini value")
    group.addoption("--specgate-no-reports", action="store_true", help="write no report folder")
    group.addoption("--specgate-server-url", metavar="CONDITION=URL", action="append", default=[],
                    help="serving mode: use the vLLM server at URL for this condition id instead of starting "
                         "`vllm serve` (repeatable; the control needs its own server)")
    group.addoption("--specgate-shard", metavar="I/N",
                    help="run only shard I of N (0-based): pairings I, I+N, I+2N, ... with their controls; "
                         "merge the shards' results with `specgate merge`")
    group.addoption("--specgate-plan", metavar="FILE",
                    help="with --specgate-shard I/N: run the pairings this plan (`specgate plan --out FILE`) gives "
                         "shard I, with their controls, instead of pairings I, I+N, ...")
    group.addoption("--specgate-no-stage-timers", action="store_true",
                    help="do not time proposal, scoring and verification inside the engine")
    group.addoption("--specgate-stage-clock", choices=("events", "sync"),
                    help="CUDA clock of the stage timers: events (default; GPU time, no serialisation) or sync "
                         "(wall time, synchronises the device at each stage boundary)")
    group.addoption("--specgate-lossless-config", metavar="PATH",
                    help="pairings file of the lossless-sampling tests (default: configs/lossless-cpu.toml)")
    group.addoption("--specgate-lossless-samples", metavar="N", type=int,
                    help="continuations sampled per lossless cell (default 3000)")
    parser.addini("specgate_config", "pairings file used when --specgate-config is not given",
                  default="configs/cpu.toml")
    parser.addini("specgate_baselines", "baseline folder used when --specgate-baselines is not given",
                  default="baselines")
    parser.addini("specgate_reports", "report folder used when --specgate-reports is not given", default="reports")


def _state(config: pytest.Config) -> SpecgateSession:
    """The session, created on first use (this is where specgate's modules are imported)."""
    if _SESSION not in config.stash:
        from specgate.harness.session import SpecgateSession

        try:
            config.stash[_SESSION] = SpecgateSession(config)
        except pytest.UsageError as exc:  # a bad flag value: one line, no traceback (CollectError prints none)
            raise pytest.Collector.CollectError(f"specgate: {exc}") from None
        # A cancelled CI job gets SIGTERM: make it an interrupt, so engines are torn down and the
        # staged baselines are reported as not saved instead of dying silently. Ctrl-C too: Python
        # drops a KeyboardInterrupt raised inside a finalizer (engines free memory with
        # gc.collect()), so the signal is also remembered and acted on at the next test.
        signalled = config.stash[_SIGNALLED] = []
        if threading.current_thread() is threading.main_thread():
            def interrupt(signum, frame):
                signalled.append(signum)
                raise KeyboardInterrupt(f"signal {signum}")

            # An ignored Ctrl-C (a job started in the background or under nohup) stays ignored.
            wanted = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN else [])
            config.stash[_HANDLERS] = {s: signal.signal(s, interrupt) for s in wanted}
    return config.stash[_SESSION]


def _stop_if_signalled(config: pytest.Config) -> None:
    signalled = config.stash.get(_SIGNALLED, None)
    if signalled:
        raise KeyboardInterrupt(f"signal {signalled[0]} (its first interrupt was lost in a finalizer)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _stop_if_signalled(item.config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _stop_if_signalled(item.config)


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo) -> None:
    """A signal can land on a frame that has no line number yet (Python 3.11, inside a `with`
    statement); pytest then crashes formatting the interrupt and skips the session's teardown.
    Drop such frames from the traceback it formats."""
    from _pytest._code import Traceback

    entries = list(excinfo.traceback)
    kept = [e for e in entries if getattr(getattr(e, "_rawentry", None), "tb_lineno", 0) is not None]
    if len(kept) < len(entries):
        excinfo.traceback = Traceback(kept)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.supply.close()  # also after an interrupt that skipped fixture teardown
    for signum, previous in config.stash.get(_HANDLERS, {}).items():
        signal.signal(signum, previous)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "spec_condition" not in metafunc.fixturenames:
        return
    conditions = _state(metafunc.config).conditions
    # Session scope groups the tests of one condition together, so each engine is built once.
    metafunc.parametrize("spec_condition", conditions, ids=[c.id for c in conditions], scope="session")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Preflight every pairing the selected tests use, before any engine is built; the engine stack's
    deprecation notices are hidden on specgate's tests (ENGINE_WARNINGS); pytest-benchmark
    times specgate's benchmarks on engines.beside.speculative_clock (a pytest-benchmark marker's
    timer), so its figures are each condition's own requests, not the paired control's beside them."""
    if _SESSION in config.stash:
        from specgate.engines.beside import speculative_clock

        config.stash[_SESSION].supply.preflight_items(items)
        _narrow_benchmark_table(config)
        for item in items:
            if "spec_condition" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.filterwarnings(*ENGINE_WARNINGS), append=False)
            if "specgate_benchmark" in getattr(item, "fixturenames", ()):
                own = item.get_closest_marker("benchmark")  # the closest marker wins: keep its settings
                item.add_marker(pytest.mark.benchmark(**{"timer": speculative_clock, **(own.kwargs if own else {})}))


# Each specgate benchmark is one timed round (the run of a condition's prompts), so pytest-benchmark's
# spread columns (min, max, stddev, IQR, outliers...) repeat one number in a 240-column table.
BENCHMARK_COLUMNS = ["mean", "rounds"]


def _narrow_benchmark_table(config: pytest.Config) -> None:
    """pytest-benchmark's table with the columns that mean something here, unless the user chose
    columns (--benchmark-columns). Its session object is pytest-benchmark's own; absent, nothing."""
    bench = getattr(config, "_benchmarksession", None)
    if bench is not None and not config.getoption("benchmark_columns", None):
        bench.columns = list(BENCHMARK_COLUMNS)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The progress lines count the conditions pytest kept (after -k and other deselection)."""
    state = session.config.stash.get(_SESSION, None)
    if state is not None:
        state.selected = state.supply.selected(session.items)


@pytest.fixture(scope="session")
def specgate_session(request: pytest.FixtureRequest):
    session = _state(request.config)
    yield session
    session.supply.close()


@pytest.fixture
def spec_engine(spec_condition, specgate_session):
    """The live vLLM engine for this condition (an error for this condition's tests only, with
    the reason, when its pairing fails preflight or its engine fails to build; a supply.Refused
    for a feature cell vLLM refuses)."""
    return specgate_session.supply.engine_for(spec_condition)


@pytest.fixture
def specgate_benchmark(spec_condition, specgate_session):
    """What a benchmark test calls with pytest-benchmark's ``benchmark``: runs, records, checks and
    judges this condition, and fails, skips or xfails the test by its verdict (specgate.harness.fixture)."""
    from specgate.harness.fixture import SpecgateBenchmark

    return SpecgateBenchmark(specgate_session, spec_condition)


@pytest.fixture
def spec_prompts(spec_condition, specgate_session):
    """The condition's prompt sample (list of matrix.prompts.Prompt), for tests of your own that
    drive ``spec_engine``; fails the test with the reason when its pairing cannot run."""
    specgate_session.supply.require_ready(spec_condition)
    return specgate_session.supply.prompts(spec_condition)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    state = session.config.stash.get(_SESSION, None)
    if state is not None:
        if session.config.stash.get(_SIGNALLED, None):
            exitstatus = session.exitstatus = pytest.ExitCode.INTERRUPTED
        state.finish(session, exitstatus)
        session.exitstatus = state.exit_status(session.exitstatus)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call) -> None:
    """Each failure's outcome class (harness/failures.py), for the run's exit status."""
    outcome = yield
    state = item.config.stash.get(_SESSION, None)
    if state is not None:
        state.note_report(item, outcome.get_result(), call.excinfo)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """pytest-benchmark's saved runs carry specgate's hardware tag (timing records are keyed on it)."""
    state = config.stash.get(_SESSION, None)
    if state is not None:
        machine_info["specgate_hardware"] = state.environment["hardware"]


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's table: the verdicts end the output
def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    state = config.stash.get(_SESSION, None)
    if state is not None:
        state.terminal(terminalreporter)
