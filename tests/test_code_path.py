"""code_path: calls per function, counted exactly, and what counts as a change."""

import time

from specgate import code_path, gate


def work(n=50, extra=None):
    total = 0
    for i in range(n):
        total += abs(-i)
        if extra:
            extra()
    return total


def test_counts_are_exact_and_an_added_call_shows_by_name():
    clean = code_path.measure(work)
    assert clean["counts"] == code_path.measure(work)["counts"] and not clean["unstable"]
    assert clean["counts"]["C:abs"] == 50 and clean["counts"][f"{__name__}.work"] == 1
    slept = code_path.measure(lambda: work(extra=lambda: time.sleep(0)))
    moved = code_path.changes(clean, slept)
    assert ("C:sleep", 0, 50) in moved


def test_work_that_differs_between_two_passes_is_left_out():
    calls = iter(range(100))
    clocky = code_path.measure(lambda: work(n=next(calls) % 2 + 1))  # 1 then 2 iterations: unstable
    assert "C:abs" in clocky["unstable"] and "C:abs" not in clocky["counts"]
    assert all(name != "C:abs" for name, _, _ in code_path.changes(clocky, code_path.measure(work)))


def test_same_software_is_judged_exactly_and_other_software_only_noted():
    base = code_path.measure(work)
    same = gate.code_path_check(base, code_path.measure(work))
    assert same[0][0].passed and same[1] is None
    changed = gate.code_path_check(base, code_path.measure(lambda: work(extra=lambda: None)))
    assert not changed[0][0].passed and "other calls than recorded" in changed[0][0].reason
    upgraded = dict(code_path.measure(lambda: work(extra=lambda: None)), versions={**base["versions"], "vllm": "9.9"})
    checks, note = gate.code_path_check(base, upgraded)
    assert checks == [] and "code path not compared" in note and "vllm" in note
