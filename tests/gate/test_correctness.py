"""In-run correctness on hand-made runs: token equality with the control, speculation active."""

from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.gate import correctness

DRAFTED = SpecCounters(4, 8, 5, (3, 2))


def run(*token_lists, specs=None):
    specs = specs or [DRAFTED] * len(token_lists)
    return RunResult("x", "sequential", 2, 1.0, tuple(
        RequestRecord(3, len(t), 0.1, s, tuple(t)) for t, s in zip(token_lists, specs)))


def test_identical_tokens_pass():
    a = run([1, 2, 3], [4, 5, 6])
    assert correctness.token_mismatches(a, a, ["p0", "p1"]) == []


def test_a_difference_names_the_prompt_position_tokens_and_context():
    control, spec = run([1, 2, 3, 4], [5, 6]), run([1, 2, 9, 4], [5, 6])
    lines = correctness.token_mismatches(control, spec, ["p0", "p1"], decode=lambda ids: "".join(map(chr, [96 + i for i in ids])))
    assert lines[0] == "at temperature 0, 1 of 2 requests emit other tokens than without speculation"
    assert lines[1].startswith("prompt p0: first difference at token 2: expected 3, got 9")
    assert "after 'ab': control 'cd', speculative 'id'" in lines[1]


def test_a_shorter_output_is_a_difference_at_its_end():
    assert correctness.first_difference((1, 2), (1, 2, 3)) == 2
    assert correctness.first_difference((1, 2), (1, 2)) is None


def test_speculation_off_for_some_requests_fails_for_every_step_proposers_only():
    idle = SpecCounters(0, 0, 0, (0, 0))
    r = run([1, 2], [3, 4], [5, 6], specs=[DRAFTED, idle, None])
    problems = correctness.speculation_problems("draft_model", r, ["a", "b", "c"])
    assert problems and "speculation did not happen for 2 of 3 requests (b, c)" in problems[0]
    assert correctness.speculation_problems("ngram", r, ["a", "b", "c"]) == []  # judged by coverage instead


def test_one_token_requests_had_nothing_to_draft():
    r = run([1], specs=[SpecCounters()])
    assert correctness.speculation_problems("eagle", r, ["a"]) == []


def test_serving_runs_are_not_asked_for_per_request_counts_http_does_not_carry():
    from specgate.matrix import config

    cfg = config.parse({"pairing": [{"name": "a", "target": "org/t", "method": "draft_model", "draft": "org/d",
                                     "k": 2, "modes": ["serving"], "concurrency": 1}]}, __import__("pathlib").Path("."))
    serving = next(c for c in cfg.conditions() if not c.is_control)
    r = run([1, 2], [3, 4], specs=[None, None])
    assert correctness.in_run_problems(serving, r, None, ["a", "b"]) == []
    sequential = __import__("dataclasses").replace(serving, mode="sequential")
    assert "no per-request" in correctness.in_run_problems(sequential, r, None, ["a", "b"])[0]
