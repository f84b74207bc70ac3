"""Why each failing test of a pytest run failed, so that the run exits with its outcome class
(core/outcomes.py): specgate fails a test with SetupFailure where its pairing cannot run (preflight,
prompt set, baseline file) and with NotJudged where --specgate-strict meets a condition without a
comparable baseline; every other failure (a regression, a test of the user's own) keeps pytest's 1.
An engine that fails to build after its pairing passed preflight is a finding about vLLM, not a
setup error: it stays a 1."""

from __future__ import annotations

import pytest

from specgate.core.outcomes import Outcome, worst


class SetupFailure(pytest.fail.Exception):
    """A test failed because its pairing could not run (exit 6 when nothing else failed)."""


class NotJudged(pytest.fail.Exception):
    """A strict run met a condition without a comparable baseline (exit 7 when nothing else failed)."""


def fail_setup(message: str):
    raise SetupFailure(message, pytrace=False)


def fail_not_judged(message: str):
    raise NotJudged(message, pytrace=False)


class Failures:
    """The outcome class of every failed test report of the session."""

    def __init__(self):
        self.kinds: dict[str, Outcome] = {}

    def note(self, report, excinfo) -> Outcome | None:
        """Called with each phase's report (pytest_runtest_makereport) and its exception info; the
        failure's class, or None when the phase did not fail."""
        if not report.failed:
            return None
        kind = Outcome.REGRESSION
        if excinfo is not None and excinfo.errisinstance(SetupFailure):
            kind = Outcome.SETUP
        elif excinfo is not None and excinfo.errisinstance(NotJudged):
            kind = Outcome.NOT_JUDGED
        self.kinds[report.nodeid] = worst([self.kinds.get(report.nodeid, kind), kind])
        return kind

    def exit_status(self, pytest_status: int, at_finish: Outcome) -> int:
        """The run's exit status: pytest's own where it is not about tests (interrupted, usage,
        internal error, nothing collected); else the worst class of the failures and of what the
        end of the session found (``at_finish``: an output not written, nothing judged when strict)."""
        if pytest_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return pytest_status
        found = worst([*self.kinds.values(), at_finish])
        if found is Outcome.PASS and pytest_status == pytest.ExitCode.TESTS_FAILED:
            return pytest_status  # a failure outside any test's phases (pytest's own count)
        return int(found)
