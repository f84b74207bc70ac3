"""Bugs planted where requests end and in the sampling parameters at speculative positions
(tests/vllm_plants.py; the public vLLM reports of issue 25) are each caught by the checks of the
``boundaries`` feature cell (gate/boundaries.py), while clean vLLM passes them; and the two vLLM
defects this cell found stay strict expected failures on the builds they were measured on.

The cell runs as a benchmark runs it: 16 prompts, each once as every kind of request, in one batch,
beside its no-speculation control, with the plain control (no end but max_tokens) as the oracle.
``draft_model`` at k = 3 (the aligned fixture pair)."""

import dataclasses
import json
from importlib import resources

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
# The first 16 prompts of the code prompt file, as scripts/repro_min_tokens_bonus.py reads them.
REPRO_PROMPTS = [json.loads(line)["prompt"] for line in resources.files("specgate").joinpath(
    "data/code_prompts.jsonl").read_text(encoding="utf-8").splitlines()[:16]]

TOKENS = "emit other tokens than without speculation"  # correctness' token equality with the control
PLANTS = [  # (planted bug, the check that must see it: a kind of request's line, or token equality)
    (vllm_plants.min_tokens_skipped_at_draft_positions, "min-tokens-stop-ids:"),
    (vllm_plants.stop_string_first_in_list_wins, "stop-strings:"),
    (vllm_plants.tokens_after_stop_string_kept, "stop-strings:"),
    (vllm_plants.penalties_skipped_at_draft_positions, TOKENS),
    (vllm_plants.bad_words_skipped_at_draft_positions, TOKENS),
    (vllm_plants.allowed_token_ids_skipped_at_draft_positions, "allowed-tokens:"),
    (vllm_plants.raw_logprobs_from_processed_logits, "logprobs-penalties:"),
    (vllm_plants.stop_checked_on_last_token_only, "stop-ids:"),
    (vllm_plants.min_tokens_judged_at_step_end_for_stop_strings, "min-tokens-stop-strings:"),
]


class BoundaryLab:
    def __init__(self, feature: str = "boundaries", pool: EnginePool | None = None):
        matrix = config.load(CPU_CONFIG, {"k": [K], "paired_control": False, "machine_reference": False})
        found = {c.id: c for c in matrix.conditions()}
        self.feature = feature
        self.spec = found[f"fixture-aligned-draft_model-k{K}+{feature}"]
        self.pool = pool or EnginePool()  # cells whose vLLM arguments are equal share engines
        p = self.spec.pairing
        base = prompt_sets.load(p.prompt_set, p.num_prompts, p.seed)
        self.prompts = preflight.copies(base, self.spec.feature_setting)
        self.ids = [x.id for x in self.prompts]
        self.control = self.run(self.spec.control)
        plain = dataclasses.replace(self.spec.control.plain, mode="batch")
        self.plain = self.pool.get(plain).run(base[:self.spec.feature_setting.max_prompts], plain)
        engine = self.pool.get(self.spec)
        self.encode, self.eos = engine.encoder(), engine.llm.get_tokenizer().eos_token_id
        tokenizer = engine.llm.get_tokenizer()
        self.decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)

    def run(self, condition=None, as_shipped=False):
        """The cell as a benchmark runs it: with the defects its feature works around worked around."""
        condition = condition or self.spec
        keys = () if as_shipped else condition.feature_setting.works_around
        engine = self.pool.get(condition)  # built before the probes, which call its kernels
        with known_defects.reference_path(keys):
            return engine.run(self.prompts, condition)

    def problems(self, run, allowance=None):
        allowance = known_defects.past_end_allowance(K) if allowance is None else allowance
        return (correctness.in_run_problems(self.spec, run, self.control, self.ids, self.decode, allowance)
                + feature_checks.problems(self.feature, run, self.control, self.plain, None, self.ids, self.decode,
                                          self.encode, self.eos, True))


@pytest.fixture(scope="module")
def lab():
    made = BoundaryLab()
    try:
        yield made
    finally:
        made.pool.close()


@pytest.fixture(scope="module")
def eos_lab(lab):
    return BoundaryLab("eos", lab.pool)  # the eos cell runs on the boundaries cell's engines


def test_clean_vllm_passes_every_boundary_check(lab):
    assert lab.problems(lab.run()) == []
    # the control is judged by the same oracle
    assert feature_checks.problems("boundaries", lab.control, None, lab.plain, None, lab.ids, lab.decode,
                                   lab.encode, lab.eos, True) == []


@pytest.mark.parametrize("plant, check", PLANTS, ids=[p.__name__ for p, _ in PLANTS])
def test_a_bug_where_requests_end_is_caught(lab, plant, check):
    with plant():
        found = lab.problems(lab.run())
    assert found, f"{plant.__name__} went unnoticed"
    caught = [line for line in found if check in line]
    assert caught, found
    print(f"{plant.__name__}: {caught[0]}")  # the figures for docs and notes


EOS_PLANTS = [  # the eos cell: "." named EOS, so most requests end by EOS inside an accepted draft run
    (vllm_plants.eos_missed_inside_draft_runs, "eos:"),
    (vllm_plants.stop_checked_on_last_token_only, "eos:"),
    (vllm_plants.min_tokens_skipped_at_draft_positions, "eos-min-tokens:"),
]


def test_clean_vllm_passes_the_eos_cell(eos_lab):
    assert eos_lab.problems(eos_lab.run()) == []


@pytest.mark.parametrize("plant, check", EOS_PLANTS, ids=[p.__name__ for p, _ in EOS_PLANTS])
def test_a_bug_where_eos_ends_a_request_is_caught(eos_lab, plant, check):
    with plant():
        found = eos_lab.problems(eos_lab.run())
    caught = [line for line in found if line.startswith(f"feature eos: {check}")]
    assert caught, f"{plant.__name__} went unnoticed: {found}"
    print(f"{plant.__name__}: {caught[0]}")


def _min_tokens_at_the_bonus_position(lab):
    """scripts/repro_min_tokens_bonus.py's case on the lab's engines: requests whose drafts carry them
    past min_tokens, where the stop id is then the greedy token."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0, max_tokens=64, min_tokens=13, stop_token_ids=[204])
    texts = [p.text for p in lab.prompts[:16]] + REPRO_PROMPTS
    control, spec = (lab.pool.get(c).llm.generate(texts, params, use_tqdm=False) for c in (lab.spec.control, lab.spec))
    return [i for i, (a, b) in enumerate(zip(control, spec)) if a.outputs[0].token_ids != b.outputs[0].token_ids]


def test_min_tokens_allows_a_stop_at_the_bonus_position(lab, request):
    """docs/known-defects.md, min-tokens-bonus-position: found by this cell (fixture-mimo-mtp-k5, 1 of 192
    requests). Strict expected failure on the builds it was measured on."""
    defect = known_defects.MIN_TOKENS_BONUS
    if defect.measured_on_this_build():
        request.applymarker(pytest.mark.xfail(strict=True, reason=defect.mark_reason()))
    assert _min_tokens_at_the_bonus_position(lab) == []


def test_the_work_around_restores_the_reference_path_for_min_tokens(lab):
    with known_defects.reference_path([known_defects.MIN_TOKENS_BONUS.key]):
        assert _min_tokens_at_the_bonus_position(lab) == []


def test_accepted_drafts_past_the_end_are_not_counted(lab, request):
    """vLLM #56101 (docs/known-defects.md, accepted-past-end): a step that ends a request counts its
    drafts past the end as accepted. Strict expected failure on the builds it was measured on."""
    defect = known_defects.ACCEPTED_PAST_END
    if defect.measured_on_this_build():
        request.applymarker(pytest.mark.xfail(strict=True, reason=defect.mark_reason()))
    assert correctness.counted_past_the_end(lab.run(), lab.ids) == []
