"""The features axis on hand-made runs and files: parsing, the cells it adds, and each check."""

import pytest

from specgate.core.results import RequestRecord, RunResult, SpecCounters
from specgate.gate import feature_checks, judge
from specgate.matrix import config
from specgate.matrix.config import ConfigError
from specgate.report import tables as report

A = SpecCounters(4, 12, 5, (3, 1, 1))
B = SpecCounters(4, 12, 4, (2, 1, 1))


def load(tmp_path, features):
    """One draft_model pairing at k 1 and 3 with these ``features`` (as parsed from TOML)."""
    entry = {"name": "a", "target": "org/target", "method": "draft_model", "draft": "org/draft", "k": [1, 3],
             "features": features}
    return config.parse({"pairing": [entry]}, tmp_path / "p.toml")


def run(*outputs, specs=None, logprobs=None, counters=None):
    specs = specs or [A] * len(outputs)
    logprobs = logprobs or [()] * len(outputs)
    return RunResult("x", "sequential", 3, 1.0, tuple(
        RequestRecord(3, len(t), 0.1, s, tuple(t), logprobs=lp) for t, s, lp in zip(outputs, specs, logprobs)),
        engine_counters=counters or {})


def test_feature_cells_run_at_the_largest_k_after_the_plain_cells_with_controls_of_their_own(tmp_path):
    ids = [c.id for c in load(tmp_path, ["logprobs", "batch"]).conditions()]
    assert ids == ["target-nospec", "target-nospec+logprobs", "target-nospec+batch", "a-draft_model-k1",
                   "a-draft_model-k3", "a-draft_model-k3+logprobs", "a-draft_model-k3+batch"]
    cells = {c.id: c for c in load(tmp_path, ["batch"]).conditions()}
    assert cells["a-draft_model-k3+batch"].mode == "batch"
    assert cells["a-draft_model-k3+batch"].plain.id == "a-draft_model-k3"
    assert cells["a-draft_model-k3+batch"].control.id == "target-nospec+batch"


def test_a_table_sets_engine_arguments_over_the_features_own(tmp_path):
    from specgate.engines.arguments import llm_kwargs

    cell = load(tmp_path, {"preemption": {"kv_cache_memory_bytes": 1000}}).conditions()[-1]
    assert llm_kwargs(cell)["kv_cache_memory_bytes"] == 1000
    assert llm_kwargs(cell.plain).get("kv_cache_memory_bytes") is None


def test_the_pairing_s_sampling_then_the_feature_s_then_each_kind_of_request_s(tmp_path):
    from specgate.engines.arguments import sampling_kwargs

    entry = {"name": "a", "target": "org/target", "method": "draft_model", "draft": "org/draft", "k": [3],
             "features": ["boundaries"], "sampling": {"stop": ["x"], "logprobs": 3}}
    matrix = config.parse({"pairing": [entry]}, tmp_path / "p.toml")
    plain, cell = [c for c in matrix.conditions() if not c.is_control]
    assert sampling_kwargs(plain) == {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "max_tokens": 64,
                                      "ignore_eos": True, "stop": ["x"], "logprobs": 3}
    count = 16 * 12
    first, last = sampling_kwargs(cell, 0, count), sampling_kwargs(cell, count - 1, count)
    assert (first["ignore_eos"], first["max_tokens"], first["logprobs"], first["stop"]) == (False, 32, 1, ["x"])
    assert (last["repetition_penalty"], last["prompt_logprobs"]) == (1.3, 1)
    # The pairing's sampling is part of its workload: another sampling, another control.
    other = config.parse({"pairing": [entry, {**entry, "name": "b", "sampling": {}}]}, tmp_path / "p.toml")
    assert len({c.id for c in other.conditions() if c.is_control and not c.feature}) == 2


@pytest.mark.parametrize("value, message", [
    (["no-such"], "unknown feature(s) ['no-such']; known: prefix-caching"),
    (["batch", "batch"], "repeated names"),
    ("batch", "must be a list of feature names or a table"),
])
def test_bad_features_give_one_error(tmp_path, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        load(tmp_path, value)


def test_a_feature_sets_the_temperature_the_cell_runs_at(tmp_path):
    cell = load(tmp_path, ["seeds"]).conditions()[-1]
    assert cell.temperature == 0.8 and cell.plain.temperature == 0.0


def test_a_transparent_feature_must_leave_tokens_and_acceptance_as_the_plain_cell():
    plain = run([1, 2], [3, 4])
    assert feature_checks.problems("chunked-prefill", plain, plain, plain, None, ["p", "q"]) == []
    found = feature_checks.problems("chunked-prefill", run([1, 2], [3, 4], specs=[A, B]), plain, plain, None, ["p", "q"])
    assert len(found) == 1 and "acceptance differs from the same condition without chunked-prefill in 1 of 2" in found[0]
    found = feature_checks.problems("batch", run([1, 2], [3, 5]), plain, plain, None, ["p", "q"])
    assert "1 of 2 requests emit other tokens than the same condition without batch (q)" in found[0]


def test_preemption_allows_a_measured_acceptance_change_but_not_more():
    plain = run([1, 2], [3, 4])
    slight = SpecCounters(4, 12, 5, (3, 1, 1))
    hits = {"num_preemptions": 3}
    assert feature_checks.problems("preemption", run([1, 2], [3, 4], specs=[A, slight], counters=hits), plain, plain, None,
                             ["p", "q"]) == []
    found = feature_checks.problems("preemption", run([1, 2], [3, 4], specs=[B, B], counters=hits), plain, plain, None,
                              ["p", "q"])
    assert found == ["feature preemption: acceptance rate 0.3333 against 0.4167 for the same condition without "
                     "preemption (-20.0%, tolerance 3%)"]


def test_a_feature_that_was_not_exercised_fails():
    plain = run([1, 2])
    found = feature_checks.problems("preemption", plain, plain, plain, None, ["p"])
    assert found == ["feature preemption: preemption was not exercised: no num preemptions counted in this run"]


def test_continuous_batching_that_never_arose_fails():
    """A run in which no request prefilled beside a decoding one proves nothing about continuous batching."""
    plain = run([1, 2])
    found = feature_checks.problems("arrivals", plain, plain, plain, None, ["p"])
    assert found == ["feature arrivals: arrivals was not exercised: no prefill beside decode counted in this run",
                     "feature arrivals: arrivals was not exercised: no drafting not contiguous counted in this run"]


def test_prefix_caching_compares_the_cached_copies_with_the_first():
    plain = run([1, 2], [3, 4])
    both = run([1, 2], [3, 4], [1, 2], [3, 4], specs=[A, A, A, B], counters={"prefix_cache_hits": 128})
    found = feature_checks.problems("prefix-caching", both, both, plain, None, ["p", "q", "p#again", "q#again"])
    assert len(found) == 1 and "the same prompts before they were cached in 1 of 2 requests" in found[0]


def test_logprobs_must_equal_the_controls_within_tolerance():
    control = run([1, 2], logprobs=[(-0.5, -1.0)])
    assert feature_checks.problems("logprobs", run([1, 2], logprobs=[(-0.5, -1.0 + 1e-5)]), control, None, None, ["p"]) == []
    found = feature_checks.problems("logprobs", run([1, 2], logprobs=[(-0.5, 0.0)]), control, None, None, ["p"])
    assert "differ from the control's by up to 1 nats" in found[0] and "prompt p token 1: 0.0000 against -1.0000" in found[0]
    assert "missing for 1 of 1" in feature_checks.problems("logprobs", run([1, 2]), control, None, None, ["p"])[0]


def test_structured_output_must_match_the_regex():
    decode = {(1,): "get_name(self)", (2,): "get name"}.get
    good, bad = run([1]), run([2])
    assert feature_checks.problems("structured-output", good, good, None, None, ["p"], lambda ids: decode(tuple(ids))) == []
    found = feature_checks.problems("structured-output", bad, good, None, None, ["p"], lambda ids: decode(tuple(ids)))
    assert "structured output ignored: 1 of 1 outputs do not match" in found[0]


def test_seeds_must_reproduce():
    first = run([1, 2], [3, 4])
    assert feature_checks.problems("seeds", first, None, None, run([1, 2], [3, 4]), ["p", "q"]) == []
    found = feature_checks.problems("seeds", first, None, None, run([1, 2], [3, 9]), ["p", "q"])
    assert "1 of 2 requests emit other tokens than a second run with the same seeds (q)" in found[0]


def test_support_is_judged_against_the_record_both_ways():
    env = {"vllm": "0.33.0", "torch": "2.13.0+cpu"}
    unsupported = {"conditions": {}, "recorded": {"vllm": "0.32.0"}, "metrics": {}, "unsupported": "n must be 1"}
    supported = {"conditions": {}, "recorded": {"vllm": "0.32.0"}, "metrics": {}, "requests": []}
    assert judge.judge_refused("n must be 1", (unsupported, ""), env).status == "unsupported"
    now_refused = judge.judge_refused("n must be 1", (supported, ""), env)
    assert now_refused.status == "fail" and "vLLM 0.33.0 refuses a combination that vLLM 0.32.0 ran" in now_refused.reason
    assert judge.judge_refused("x", (None, "no record"), env).status == "no-baseline"
    runs_now = judge.judge_condition(judge.Evidence(run([1]), None, (unsupported, ""), (None, "-"), ["p"]), env, {})
    assert runs_now.status == "fail" and "refused this combination when it was recorded" in runs_now.reason


def test_the_summary_has_a_feature_by_method_table():
    def entry(method, feature, status):
        return {"conditions": {"method": method, "feature": feature}, "metrics": {}, "verdict": {"status": status}}
    doc = {"runs": {"c+batch": entry("none", "batch", "pass"), "a+batch": entry("draft_model", "batch", "fail"),
                    "b+batch": entry("ngram", "batch", "pass"), "a+n2": entry("draft_model", "n2", "unsupported"),
                    "plain": {"conditions": {"method": "ngram"}, "metrics": {}}}}
    table = report.feature_table(doc, markdown=True).splitlines()
    assert [c.strip() for c in table[0].split("|")[1:-1]] == ["feature", "draft_model", "ngram", "no speculation"]
    assert [c.strip() for c in table[2].split("|")[1:-1]] == ["batch", "FAIL", "pass", "pass"]
    assert [c.strip() for c in table[3].split("|")[1:-1]] == ["n2", "unsupported", "-", "-"]


SCHEDULE = [[1, 1, 8], [2, 2, 2], [3, 3, 1]]


def test_the_schedule_reads_as_vllm_expands_it():
    from specgate.matrix.features import scheduled_drafts

    # capped at k; a batch size between ranges keeps the range below's; past the last, the last's
    assert [scheduled_drafts(SCHEDULE, 3, n) for n in (1, 2, 3, 9)] == [3, 2, 1, 1]
    assert [scheduled_drafts([[1, 2, 4], [5, 8, 2]], 8, n) for n in (1, 2, 3, 4, 5, 9)] == [4, 4, 4, 4, 2, 2]


def schedule_run(most: dict[int, int], changes: int = 4):
    counters = {f"most_drafts_at_batch_{n}": d for n, d in most.items()} | {"draft_length_changes": changes}
    return run([1, 2], counters=counters)  # at k 3


def test_a_schedule_cell_must_keep_every_batch_size_within_the_schedule_and_reach_it():
    check = feature_checks.schedule_problems
    assert check(schedule_run({1: 3, 2: 2, 3: 1}), SCHEDULE, drafts_every_step=True) == []
    over = check(schedule_run({1: 3, 2: 3, 3: 1}), SCHEDULE, drafts_every_step=False)
    assert over == ["a request was given 3 drafts in a step of 2 requests; the schedule allows 2"]
    # a lookup drafts only where it matches: reaching the schedule is asked of model drafters alone
    assert check(schedule_run({1: 2, 2: 2, 3: 1}), SCHEDULE, drafts_every_step=False) == []
    under = check(schedule_run({1: 2, 2: 2, 3: 1}), SCHEDULE, drafts_every_step=True)
    assert under == ["no request was given more than 2 drafts in a step of 1 requests; the schedule asks for 3"]


def test_a_schedule_cell_that_never_crossed_a_threshold_is_not_exercised():
    check = feature_checks.schedule_problems
    found = check(schedule_run({3: 1}), SCHEDULE, drafts_every_step=True)
    assert found == ["not exercised: no step of 1, 2 requests drafted (seen: {3: 1})"]
    found = check(schedule_run({1: 3, 2: 2, 3: 1}, changes=0), SCHEDULE, drafts_every_step=True)
    assert found == ["not exercised: the number of drafts never changed between steps"]
