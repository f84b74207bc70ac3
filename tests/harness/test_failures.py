"""A pytest run's exit status by outcome class (core/outcomes.py): what each failure was."""

from types import SimpleNamespace

import pytest

from specgate.core.outcomes import Outcome, worst
from specgate.harness.failures import Failures, NotJudged, SetupFailure


def note(failures: Failures, nodeid: str, exc: BaseException | None, failed: bool = True) -> None:
    info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:  # noqa: BLE001 - the ExceptionInfo pytest would hand the hook
            info = pytest.ExceptionInfo.from_current()
    failures.note(SimpleNamespace(nodeid=nodeid, failed=failed), info)


@pytest.mark.parametrize("raised,status", [
    ([SetupFailure("no draft", pytrace=False)], Outcome.SETUP),
    ([NotJudged("no record", pytrace=False)], Outcome.NOT_JUDGED),
    ([SetupFailure("no draft", pytrace=False), NotJudged("no record", pytrace=False)], Outcome.SETUP),
    # A regression outranks everything else; so does any failing test that is not specgate's.
    ([NotJudged("no record", pytrace=False), pytest.fail.Exception("acceptance fell", pytrace=False)], Outcome.REGRESSION),
    ([SetupFailure("no draft", pytrace=False), AssertionError("a user's test")], Outcome.REGRESSION),
])
def test_the_run_exits_with_its_worst_failure_class(raised, status):
    failures = Failures()
    for i, exc in enumerate(raised):
        note(failures, f"t{i}", exc)
    note(failures, "passed", None, failed=False)
    assert failures.exit_status(pytest.ExitCode.TESTS_FAILED, Outcome.PASS) == status


def test_the_end_of_the_session_counts_and_pytests_own_statuses_stand():
    failures = Failures()
    # Every test passed, but a strict run judged nothing / an output could not be written.
    assert failures.exit_status(pytest.ExitCode.OK, Outcome.NOT_JUDGED) == 7
    assert failures.exit_status(pytest.ExitCode.OK, Outcome.SETUP) == 6
    assert failures.exit_status(pytest.ExitCode.OK, Outcome.PASS) == 0
    # A failure pytest counted outside any test phase stays a failure.
    assert failures.exit_status(pytest.ExitCode.TESTS_FAILED, Outcome.PASS) == 1
    note(failures, "t", SetupFailure("no draft", pytrace=False))
    for status in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        assert failures.exit_status(status, Outcome.PASS) == status
    # A test that failed in setup and again in teardown is counted by its worst phase.
    note(failures, "t", AssertionError("teardown"))
    assert failures.exit_status(pytest.ExitCode.TESTS_FAILED, Outcome.PASS) == 1


def test_precedence_puts_a_regression_first():
    assert worst([]) is Outcome.PASS
    assert worst([Outcome.NOT_JUDGED, Outcome.SETUP]) is Outcome.SETUP
    assert worst([Outcome.PASS, Outcome.REGRESSION, Outcome.SETUP]) is Outcome.REGRESSION
