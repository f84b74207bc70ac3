"""Where requests end, judged without vLLM (gate/boundaries.py): the plain-cell oracle, the settings'
own invariants, the control comparison and "not exercised"."""

from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.gate import boundaries, correctness
from specgate.matrix import features

WHOLE = (5, 6, 7, 8, 9, 10, 11, 12)  # the plain cell's greedy continuation of one prompt
TEXT = {5: "a", 6: "(", 7: "s", 8: "e", 9: "l", 10: "f", 11: ")", 12: ":", 0: ""}


def decode(ids):
    return "".join(TEXT[t] for t in ids)


def rec(ids, finish="length", stop_string=None, text=None, logprobs=(), prompt_logprobs=(), spec=None):
    return RequestRecord(prompt_tokens=4, output_tokens=len(ids), latency_s=None, output_token_ids=tuple(ids),
                         finish_reason=finish, stop_string=stop_string, text=text, logprobs=tuple(logprobs),
                         prompt_logprobs=tuple(prompt_logprobs), spec=spec)


def run(*records):
    return RunResult("c", "batch", 3, 1.0, tuple(records))


def judge(kind, r, control=None, plain=WHOLE, eos=0):
    return boundaries.problems([("kind", kind)], run(r), run(control or r), run(rec(plain)), ["p"], eos, decode, True)


def test_expected_end_is_the_first_of_eos_stop_ids_and_max_tokens():
    assert boundaries.expected_end(WHOLE, {"stop_token_ids": [9, 7]}, None) == (3, "stop")
    assert boundaries.expected_end(WHOLE, {"max_tokens": 2, "stop_token_ids": [9]}, None) == (2, "length")
    assert boundaries.expected_end(WHOLE + (0, 5), {}, 0) == (9, "stop")
    assert boundaries.expected_end(WHOLE + (0, 5), {"ignore_eos": True}, 0) == (10, "length")


def test_the_stop_string_that_completes_first_wins_whatever_the_list_order():
    assert boundaries.first_stop_string("a(self):", ["elf)", "(se"]) == (1, 4, "(se")
    assert boundaries.first_stop_string("a(self):", ["f)", "lf)"]) == (5, 7, "f)")  # a tie: the first listed
    assert boundaries.first_stop_string("a(self):", ["lf)", "f)"]) == (4, 7, "lf)")
    assert boundaries.first_stop_string("abc", ["x"]) is None


def test_clean_ends_pass():
    assert judge({"stop_token_ids": [8]}, rec([5, 6, 7, 8], "stop")) == []
    assert judge({"stop": ["elf)", "(se"]}, rec([5, 6, 7, 8], "stop", "(se", "a")) == []
    assert judge({"stop": ["(se"], "include_stop_str_in_output": True}, rec([5, 6, 7, 8], "stop", "(se", "a(se")) == []
    assert judge({"max_tokens": 2}, rec([5, 6])) == []


def test_the_first_listed_stop_string_winning_is_caught_even_when_the_control_agrees():
    wrong = rec([5, 6, 7, 8, 9, 10, 11], "stop", "elf)", "a(s")
    found = judge({"stop": ["elf)", "(se"]}, wrong)
    assert found and "'(se' completes first" in found[0] and "tokens kept past the stop string" in found[0]


def test_tokens_past_an_end_are_caught():
    assert "expected the first 4 tokens" in judge({"stop_token_ids": [8]}, rec([5, 6, 7, 8, 9], "stop"))[0]
    assert "expected the first 2 tokens" in judge({"max_tokens": 2}, rec([5, 6, 7]))[0]


def test_min_tokens_and_allowed_tokens_are_checked_on_the_output_itself():
    early = judge({"min_tokens": 4, "stop_token_ids": [7]}, rec([5, 6, 7], "stop"))
    assert "stop token 7 at position 2 before min_tokens=4" in early[0]
    short = judge({"min_tokens": 4, "stop": ["s"]}, rec([5, 6, 7], "stop", "s", "a("))
    assert "before min_tokens=4" in short[0]
    outside = judge({"allowed_token_ids": [5, 6]}, rec([5, 6, 7]))
    assert "1 tokens outside allowed_token_ids (first 7)" in outside[0]


def test_where_and_why_a_request_ended_and_its_logprobs_are_compared_with_the_control():
    kind = {"min_tokens": 1, "logprobs": 1, "prompt_logprobs": 1}
    ok = rec([5, 6], logprobs=[-0.1, -0.2], prompt_logprobs=[-1.0, -2.0, -3.0])
    assert judge(kind, ok) == []
    other = rec([5, 6], logprobs=[-0.1, -1.2], prompt_logprobs=[-1.0, -2.0, -3.0])
    assert "logprobs differ from the control's by 1" in judge(kind, other, control=ok)[0]
    stopped = rec([5, 6], "stop", logprobs=[-0.1, -0.2], prompt_logprobs=[-1.0, -2.0, -3.0])
    assert "ended by stop where the control ended by length" in judge(kind, stopped, control=ok)[0]
    missing = rec([5, 6], logprobs=[-0.1], prompt_logprobs=[-1.0, -2.0, -3.0])
    assert "1 logprobs for 2 tokens" in judge(kind, missing, control=missing)[0]


def test_a_kind_that_changed_nothing_is_not_exercised():
    found = judge({"stop_token_ids": [99]}, rec(WHOLE))
    assert found == ["kind: not exercised: every request emitted what it emits without the setting, so this cell "
                     "cannot see it on this workload"]
    # under the cell's own max_tokens, a request cut only by it changed nothing either
    cut = boundaries.problems([("kind", {"stop_token_ids": [99], "max_tokens": 4})], run(rec(WHOLE[:4])),
                              None, run(rec(WHOLE)), ["p"], 0, decode, True, limit=4)
    assert cut and "not exercised" in cut[0]
    shorter = boundaries.problems([("kind", {"max_tokens": 2})], run(rec(WHOLE[:2])), None, run(rec(WHOLE)),
                                  ["p"], 0, decode, True, limit=4)
    assert shorter == []


def test_accepted_drafts_must_fit_the_emitted_tokens():
    # 8 tokens: 1 from the prefill, then 3 verification steps of 3 accepted + 1 would be 13 > 8.
    r = rec(WHOLE, spec=SpecCounters(drafts=3, draft_tokens=9, accepted=7, accepted_per_pos=(3, 2, 2)))
    assert "accepted drafts counted past the end of 1 of 1 requests" in correctness.counted_past_the_end(run(r), ["p"])[0]
    assert correctness.counted_past_the_end(run(r), ["p"], allowance=3) == []
    fits = rec(WHOLE, spec=SpecCounters(drafts=3, draft_tokens=9, accepted=5, accepted_per_pos=(3, 1, 1)))
    assert correctness.counted_past_the_end(run(fits), ["p"]) == []


def test_tokens_named_by_text_resolve_to_ids():
    encode = {"(": [6], "ab": [5, 5], "a(": [5, 6]}.__getitem__
    got = features.resolve({"stop_token_texts": ["("], "allowed_token_texts": ["a("], "min_tokens": 2}, encode)
    assert got == {"stop_token_ids": [6], "allowed_token_ids": [5, 6], "min_tokens": 2}
    try:
        features.resolve({"stop_token_texts": ["ab"]}, encode)
    except features.TokenTextError as exc:
        assert "'ab' is 2 tokens" in str(exc)
    else:
        raise AssertionError("a stop token text of two tokens must be refused")


def test_each_kind_of_request_gets_its_own_sampling_in_run_order():
    f = features.FEATURES["boundaries"]
    count = f.max_prompts * f.copies
    kinds = [f.request_sampling(i, count) for i in range(0, count, f.max_prompts)]
    assert [k.get("max_tokens") for k in kinds] == [32, 32, 32, 32, 32, 32, 1, 2, 3, 32, 32, 32]
    assert all(k["ignore_eos"] is False for k in kinds)


def test_a_cell_that_names_another_eos_ends_at_either_eos():
    # "." named EOS (here 8) while the target's own (0) still stops as a stop id
    assert boundaries.expected_end(WHOLE + (0,), {}, {0, 8}) == (4, "stop")
    assert judge({}, rec(WHOLE[:4], "stop"), eos={0, 8}) == []
    assert judge({}, rec(WHOLE[:5], "stop"), eos={0, 8})  # one token past the named EOS
    # min_tokens masks the named EOS too
    assert judge({"min_tokens": 6}, rec(WHOLE, "length"), eos={0, 8})[0] == \
        "kind: 1 of 1 requests wrong (first p: stop token 8 at position 3 before min_tokens=6)"


def test_an_eos_cell_must_end_at_least_half_its_requests_by_an_eos():
    from specgate.gate.feature_checks import eos_share_problems

    ended, ran_on = rec(WHOLE[:4] + (19,), "stop"), rec(WHOLE, "length")
    assert eos_share_problems(run(ended, ran_on), {19, 0}, ".") == []
    assert eos_share_problems(run(ended, ran_on, ran_on), {19, 0}, ".") == [
        "not exercised: an EOS ('.' or the target's own) ended 1 of 3 requests, under half"]
    # only the first kind's requests count: the second (min_tokens) may run on
    assert eos_share_problems(run(ended, ran_on, ran_on, ran_on), {19, 0}, ".", kinds=2) == []
