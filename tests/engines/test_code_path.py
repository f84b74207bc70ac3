"""code_path: calls per function, counted exactly, and what counts as a change."""

import time

from specgate.engines.code_path import measure
from specgate.gate.code_path import changes, check


def work(n=50, extra=None):
    total = 0
    for i in range(n):
        total += abs(-i)
        if extra:
            extra()
    return total


def test_counts_are_exact_and_an_added_call_shows_by_name():
    clean = measure(work)
    assert clean["counts"] == measure(work)["counts"] and not clean["unstable"]
    assert clean["counts"]["C:abs"] == 50 and clean["counts"][f"{__name__}.work"] == 1
    slept = measure(lambda: work(extra=lambda: time.sleep(0)))
    moved = changes(clean, slept)
    assert ("C:sleep", "0", "50") in moved


def test_specgate_s_own_calls_are_not_counted_but_what_they_call_outside_specgate_is():
    scope = {"__name__": "specgate.engines.example", "work": work}
    exec("def drive():\n    for _ in range(3):\n        abs(-1)\n    return work(n=2)\n", scope)
    counts = measure(scope["drive"])["counts"]
    assert "specgate.engines.example.drive" not in counts  # specgate's own frame
    assert counts["C:abs"] == 2  # work's two calls; drive's three are specgate's
    assert counts[f"{__name__}.work"] == 1


def test_clock_driven_work_is_a_range_and_a_clock_driven_loop_added_to_exact_work_is_a_change():
    calls = iter(range(100))
    clocky = measure(lambda: work(n=next(calls) % 2 + 1))  # 1 then 2 iterations
    assert clocky["unstable"]["C:abs"] == [1, 2] and "C:abs" not in clocky["counts"]
    again = iter(range(100))
    assert changes(clocky, measure(lambda: work(n=2 - next(again) % 2))) == []  # 2 then 1
    # Measurements as recorded (no clock here, so the test cannot depend on the machine's speed):
    exact = {"counts": {"C:perf_counter": 5}, "unstable": {}}
    busy_wait = {"counts": {}, "unstable": {"C:perf_counter": [40, 57]}}  # a loop that waits on the clock
    logging_both = ({"counts": {}, "unstable": {"C:log": [0, 1]}}, {"counts": {}, "unstable": {"C:log": [1, 2]}})
    assert changes(exact, busy_wait) == [("C:perf_counter", "5", "40..57")]
    assert changes(*logging_both) == []
    assert changes({"counts": {}, "unstable": ["C:log"]}, {"counts": {"C:log": 3}, "unstable": {}}) == []


def test_same_software_is_judged_exactly_and_other_software_only_noted():
    base = measure(work)
    same = check(base, measure(work))
    assert same[0][0].passed and same[1] is None
    changed = check(base, measure(lambda: work(extra=lambda: None)))
    assert not changed[0][0].passed and "other calls than recorded" in changed[0][0].reason
    upgraded = dict(measure(lambda: work(extra=lambda: None)), versions={**base["versions"], "vllm": "9.9"})
    checks, note = check(base, upgraded)
    assert checks == [] and "code path not compared" in note and "vllm" in note


def test_only_a_short_request_is_profiled():
    """A context-length bucket's prompt of thousands of tokens is not profiled (it would prefill twice
    more under the profiler); a short prompt is. The fixture's real tokenizer counts; no engine runs
    (a generate call would raise)."""
    from transformers import AutoTokenizer

    from paths import CONFIGS, FIXTURE_MODELS
    from specgate.engines import code_path as code_path_mod
    from specgate.engines.engine import Engine
    from specgate.matrix import config
    from specgate.matrix.prompts import Prompt

    tokenizer = AutoTokenizer.from_pretrained(FIXTURE_MODELS / "target")
    condition = next(c for c in config.load(CONFIGS / "cpu.toml").conditions() if not c.is_control)
    engine = Engine(condition)
    engine.llm = type("LLM", (), {"get_tokenizer": lambda self: tokenizer})()
    profiled = []
    engine._generate = lambda *args, **kwargs: profiled.append(args) or []
    long_text = "def f(x):\n    return x + 1\n\n" * (code_path_mod.MAX_PROMPT_TOKENS // 8)
    assert len(tokenizer.encode(long_text)) > code_path_mod.MAX_PROMPT_TOKENS
    assert engine.code_path(Prompt("long", long_text), condition) is None and not profiled
    assert engine.code_path(Prompt("short", "def f(x):\n"), condition) is not None and len(profiled) == 2
