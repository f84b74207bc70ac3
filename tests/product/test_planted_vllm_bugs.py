"""Bugs planted inside vLLM (tests/vllm_plants.py) are each caught by the checks a benchmark runs:
in-run correctness (tokens equal the control's, speculation happened) and the verdict against a
baseline recorded from clean vLLM in the same test. Clean vLLM passes the same checks."""

import dataclasses

import pytest

from paths import CPU_CONFIG
import vllm_plants
from planted_lab import Lab
from specgate.core.metrics import summarize
from specgate.engines.pool import EnginePool
from specgate.engines import known_defects
from specgate.gate import code_path as gate_code_path
from specgate.gate import correctness, feature_checks, judge, sanity
from specgate.matrix import config, features, prompts
from specgate.records import baselines

pytestmark = pytest.mark.engine
SPEC = "fixture-aligned-draft_model-k3"


@pytest.fixture(scope="module")
def lab():
    matrix = config.load(CPU_CONFIG, {"num_prompts": 8, "max_new_tokens": 32, "rounds": 1, "paired_control": False})
    spec = next(c for c in matrix.conditions() if c.id == SPEC)
    pool = EnginePool()
    try:
        yield Lab(pool, spec)
    finally:
        pool.close()


def test_a_sleep_in_every_step_is_caught_as_blocked_time(lab):
    """A sleep in every step of every engine (the control's too, so no paired ratio sees it) shows
    as time the engine thread was blocked: neither running nor waiting for a CPU. The subject is
    that the check sees a sleep inside vLLM, not the default tolerance's false-alarm rate (measured
    in campaigns, docs/baselines.md): a 50% sleep (about 30 points) against a 10-point tolerance."""
    control = lab.spec.control
    run = lab.run(control)
    record = baselines.timing_record(baselines.condition_facts(control), lab.env, summarize(run).as_dict(),
                                     run.to_dict(), None)
    assert len(record["cpu_s"]) == len(lab.prompts)

    def verdict():
        return judge.judge_condition(judge.Evidence(lab.run(control), None, (None, "not judged here"), (record, ""),
                                                  lab.ids), lab.env, {"blocked": 0.10})

    clean = verdict()
    with vllm_plants.sleep_in_every_step(0.5):
        slowed = verdict()
    assert clean.status == "pass", clean.reason
    assert slowed.status == "fail", (slowed.reason, slowed.notes, [c.reason for c in slowed.checks])
    assert "blocked" in [c.metric for c in slowed.failures], slowed.reason
    assert "sleeps or waits" in slowed.reason


def test_work_added_to_every_step_is_caught_as_another_code_path(lab):
    """CPU work added to every step of every engine (a busy loop of 10% of the step) makes other
    calls than the recorded code: caught exactly, on any machine speed; clean vLLM makes the same."""
    control = lab.spec.control
    engine = lab.pool.get(control)
    record = {"code_path": engine.code_path(lab.prompts[0], control)}
    clean = gate_code_path.check(record["code_path"], engine.code_path(lab.prompts[0], control))
    with vllm_plants.busy_in_every_step(0.1):
        busy = gate_code_path.check(record["code_path"], engine.code_path(lab.prompts[0], control))
    assert clean[0][0].passed, clean[0][0].reason
    assert not busy[0][0].passed and "vllm_plants" in busy[0][0].reason, busy[0][0].reason


def test_clean_vllm_passes_every_check(lab):
    for condition in (lab.spec, lab.batch):
        v = lab.verdict(condition)
        assert v.status == "pass", v.reason


def test_every_draft_accepted_at_temperature_0_is_caught(lab):
    with vllm_plants.every_draft_accepted():
        v = lab.verdict(lab.spec)
    assert v.status == "fail"
    assert "emit other tokens than without speculation" in v.reason
    assert "acceptance_rate rose" in v.reason and "re-record" in v.reason


def test_speculation_silently_off_for_half_the_requests_is_caught(lab):
    with vllm_plants.speculation_off_for_half():
        v = lab.verdict(lab.spec)
    assert v.status == "fail"
    assert "speculation did not happen for" in v.reason
    assert "drafts_per_token fell" in v.reason


def test_acceptance_that_depends_on_batch_size_is_caught(lab):
    with vllm_plants.acceptance_depends_on_batch_size():
        sequential, batch = lab.verdict(lab.spec), lab.verdict(lab.batch)
    assert sequential.status == "pass", "one request per step: the planted bug must not fire"
    assert batch.status == "fail" and "acceptance_rate fell" in batch.reason


class FeatureLab:
    """Feature cells (specgate.matrix.features) of the same condition: each feature's control and clean
    record made once, then a cell judged the way the benchmark judges it."""

    def __init__(self, lab: Lab):
        self.lab, self.plain = lab, lab.run(lab.spec)
        self.controls, self.records = {}, {}

    def cell(self, feature):
        return dataclasses.replace(self.lab.spec, feature=feature, mode=features.FEATURES[feature].mode)

    def prompts(self, feature):
        again = features.of(feature).repeat_prompts
        return self.lab.prompts + ([prompts.Prompt(f"{p.id}#again", p.text) for p in self.lab.prompts] if again else [])

    def run(self, condition):
        return self.lab.pool.get(condition).run(self.prompts(condition.feature), condition)

    def verdict(self, feature):
        cell, found = self.cell(feature), self.prompts(feature)
        if feature not in self.controls:
            self.controls[feature] = self.run(cell.control)
            clean = self.run(cell)
            self.records[feature] = baselines.portable_record(baselines.condition_facts(cell), self.lab.env,
                                                              summarize(clean).as_dict(), clean.to_dict())
        run, control, ids = self.run(cell), self.controls[feature], [p.id for p in found]
        problems = sanity.problems(cell, run, summarize(run, control))
        problems += correctness.in_run_problems(cell, run, control, ids,
                                                past_end_allowance=known_defects.past_end_allowance(cell.k))
        problems += feature_checks.problems(feature, run, control, self.plain, None, ids)
        return judge.judge_condition(judge.Evidence(run, control, (self.records[feature], ""), (None, "not judged here"),
                                                  ids, problems), self.lab.env, {})


@pytest.fixture(scope="module")
def feature_lab(lab):
    return FeatureLab(lab)


@pytest.mark.parametrize("feature", ["logprobs", "prefix-caching"])
def test_clean_vllm_passes_the_feature_cells(feature_lab, feature):
    v = feature_lab.verdict(feature)
    assert v.status == "pass", v.reason


def test_logprobs_taken_from_the_draft_are_caught(feature_lab):
    feature_lab.verdict("logprobs")  # control and clean record first, from clean vLLM
    with vllm_plants.logprobs_from_draft():
        v = feature_lab.verdict("logprobs")
    assert v.status == "fail"
    assert "feature logprobs: logprobs of the emitted tokens differ from the control's" in v.reason


def test_prefix_cache_hits_that_change_the_drafts_are_caught(feature_lab):
    feature_lab.verdict("prefix-caching")
    with vllm_plants.prefix_hits_change_drafts():
        v = feature_lab.verdict("prefix-caching")
    assert v.status == "fail"
    # In-run: against the uncached copies, or (the engine here is warm, so both copies hit) the
    # plain cell; and against the clean record.
    assert "feature prefix-caching: acceptance differs from the same" in v.reason
    assert "acceptance_rate fell" in v.reason


def test_a_small_acceptance_change_with_every_token_unchanged_is_caught_exactly(lab):
    """At temperature 0 on the recording hardware every request's counts are exact data: a drafter
    bug that moves acceptance far less than the 3% tolerance still fails, naming the request."""
    with vllm_plants.drafter_bookkeeping_off(every=120):
        v = lab.verdict(lab.spec)
    assert v.status == "fail", v.reason
    assert [c.metric for c in v.failures] == ["acceptance_counts"], v.reason  # tokens and ratios within tolerance
    rate = next(c for c in v.checks if c.metric == "acceptance_rate")
    assert 0 < abs(rate.change) < 0.03, rate.reason
    assert "requests drafted or accepted other counts than recorded" in v.reason and "first: prompt" in v.reason


def test_continuous_batching_is_exercised_and_clean_vllm_passes_it(feature_lab):
    v = feature_lab.verdict("arrivals")
    assert v.status == "pass", v.reason
    run = feature_lab.run(feature_lab.cell("arrivals"))
    # What the cell exists for happened: prefills beside decoding requests, and a request still
    # prefilling below one that drafts (the drafting requests not contiguous in the batch).
    assert run.engine_counters["prefill_beside_decode"] > 0 and run.engine_counters["drafting_not_contiguous"] > 0
    steps = [r.steps for r in run.requests]
    # A request joined after another had finished (freeing a slot) while a third, which joined
    # earlier, was still running.
    assert any(a[1] <= b[0] and c[0] < b[0] < c[1]
               for a in steps for b in steps for c in steps if len({a, b, c}) == 3), steps


@pytest.mark.parametrize("plant", ["drafts_to_wrong_slot_when_not_contiguous", "drafts_dropped_when_a_request_joins"])
def test_bugs_that_only_continuous_batching_shows_are_caught(feature_lab, plant):
    feature_lab.verdict("arrivals")  # control and clean record first, from clean vLLM
    with getattr(vllm_plants, plant)():
        plain = feature_lab.lab.verdict(feature_lab.lab.spec)
        v = feature_lab.verdict("arrivals")
    assert plain.status == "pass", f"one request at a time: the planted bug must not fire ({plain.reason})"
    assert v.status == "fail"
    assert "acceptance_counts" in [c.metric for c in v.failures], v.reason
