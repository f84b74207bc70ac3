"""Bugs planted in vLLM's per-batch-size speculation schedule (num_speculative_tokens_per_batch_size;
vLLM #47014 crashed on CPU where k changed, #49548 collapsed at the threshold) are each caught by the
``speculation-schedule`` feature cell (gate/feature_checks.schedule_problems), while clean vLLM
passes; and the Medusa defect this cell found stays a strict expected failure on the builds it was
measured on.

The cell runs as a benchmark runs it: the arrivals mode (requests join every 3 engine steps, at
most 3 at once, so the batch grows 1 -> 2 -> 3 and drains back), beside its control. ``draft_model``
at k = 3: the schedule then asks for 3, 2 and 1 drafts."""

import pytest

import vllm_plants
from paths import CPU_CONFIG
from specgate.engines import known_defects
from specgate.engines.pool import EnginePool
from specgate.gate import correctness, feature_checks
from specgate.matrix import config, preflight
from specgate.matrix import prompts as prompt_sets

pytestmark = pytest.mark.engine
K = 3
FEATURE = "speculation-schedule"
PLANTS = [  # (planted bug, what the check must say)
    (vllm_plants.speculation_schedule_ignored, "the schedule allows"),
    (vllm_plants.speculation_schedule_off_by_one, "the schedule asks for"),
    (vllm_plants.stale_drafts_when_k_shrinks, "the schedule allows"),
]


class ScheduleLab:
    def __init__(self):
        matrix = config.load(CPU_CONFIG, {"k": [K], "paired_control": False, "machine_reference": False})
        found = {c.id: c for c in matrix.conditions()}
        self.pool = EnginePool()
        self.spec = found[f"fixture-aligned-draft_model-k{K}+{FEATURE}"]
        p = self.spec.pairing
        self.prompts = preflight.copies(prompt_sets.load(p.prompt_set, p.num_prompts, p.seed),
                                        self.spec.feature_setting)
        self.ids = [x.id for x in self.prompts]
        self.control = self.pool.get(self.spec.control).run(self.prompts, self.spec.control)
        self.medusa = found[f"fixture-heads-medusa-k{K}+{FEATURE}"]

    def run(self, condition=None, fresh=False):
        """The cell's run; ``fresh``: on an engine built now (a plant in the scheduler's construction)."""
        condition = condition or self.spec
        if fresh:
            self.pool.close()
            self.pool.failed.clear()  # a build that failed under an earlier plant is tried again
        try:
            return self.pool.get(condition).run(self.prompts, condition)
        finally:
            if fresh:
                self.pool.close()

    def problems(self, run):
        return (correctness.in_run_problems(self.spec, run, self.control, self.ids, None,
                                            known_defects.past_end_allowance(K))
                + feature_checks.problems(FEATURE, run, self.control, None, None, self.ids, drafts_every_step=True))


@pytest.fixture(scope="module")
def lab():
    made = ScheduleLab()
    try:
        yield made
    finally:
        made.pool.close()


def test_clean_vllm_passes_the_schedule_checks(lab):
    run = lab.run()
    assert lab.problems(run) == []
    # the cell saw what it exists for: every batch size at the schedule's k, and k changing
    seen = {int(key.rsplit("_", 1)[1]): v for key, v in run.engine_counters.items() if key.startswith("most_drafts")}
    assert seen == {1: 3, 2: 2, 3: 1}
    assert run.engine_counters["draft_length_changes"] > 0


@pytest.mark.parametrize("plant, check", PLANTS, ids=[p.__name__ for p, _ in PLANTS])
def test_a_bug_in_the_speculation_schedule_is_caught(lab, plant, check):
    with plant():
        found = lab.problems(lab.run(fresh=True))
    caught = [line for line in found if check in line]
    assert caught, f"{plant.__name__} went unnoticed: {found}"
    print(f"{plant.__name__}: {caught[0]}")  # the figures for docs and notes


def test_medusa_drafts_under_a_speculation_schedule(lab, request):
    """docs/known-defects.md, medusa-fixed-k: found by this cell (fixture-heads-medusa-k5; here at k 3). Medusa's
    engine dies at the first step whose batch size schedules another k. Strict expected failure on
    the builds it was measured on."""
    defect = known_defects.MEDUSA_FIXED_K
    if defect.measured_on_this_build():
        request.applymarker(pytest.mark.xfail(strict=True, reason=defect.mark_reason()))
    lab.run(lab.medusa, fresh=True)


def test_the_work_around_restores_the_reference_path_for_medusa(lab):
    with known_defects.reference_path([known_defects.MEDUSA_FIXED_K.key]):
        run = lab.run(lab.medusa, fresh=True)
    assert feature_checks.problems(FEATURE, run, None, None, None, lab.ids, drafts_every_step=True) == []
