"""The shipped lossless suite (specgate.suites.test_lossless) on this repository's pairings, and
planted bugs (vllm_plants.lossless_*) that it must each reject in the reference path."""

from __future__ import annotations

import pytest

import vllm_plants
from specgate.engines import known_defects
from specgate.suites.test_lossless import (MIN_DRAFTED_NGRAM, lab, pytest_generate_tests,  # noqa: F401
                                           test_logprobs_at_temperature_are_the_targets, test_lossless_as_shipped,
                                           test_lossless_cell_can_see_its_setting, test_lossless_reference_path)

pytestmark = pytest.mark.engine


PLANTS = [  # (planted bug, condition and setting where it must show, samples: 0 = the default)
    (vllm_plants.lossless_ignore_top_p, "greedy-draft-draft_model-k1", "temperature-0.7-top-p-0.8", 0),
    # A subtle one: 3000 samples gave p = 6e-7, just above the cell's alpha / 2 = 5e-7.
    (vllm_plants.lossless_draft_probs_wrong_temperature, "probabilistic-draft-draft_model-k1", "temperature-1", 10000),
    # The EAGLE family's probabilistic drafting (issue 24): p 1e-186 at 3000 samples.
    (vllm_plants.lossless_draft_probs_wrong_temperature, "e3-probabilistic-eagle3-k3", "temperature-0.7-top-p-0.8", 0),
    (vllm_plants.lossless_recovery_reuses_acceptance_noise, "greedy-draft-draft_model-k3", "temperature-1", 0),
    (vllm_plants.lossless_recovered_from_target, "greedy-draft-draft_model-k1", "temperature-1", 0),
    (vllm_plants.lossless_no_temperature_on_speculative_positions, "ngram-ngram-k3", "temperature-0.7-top-p-0.8", 0),
    # Issue 25: the penalty cell passed this bug on its old prompt (shift 0.053 < detectable 0.061).
    (vllm_plants.penalties_skipped_at_draft_positions, "greedy-draft-draft_model-k1", "repetition-penalty-1.5", 0),
    # Issue 25: token masks ignored at the speculative positions (vLLM #18902, #26317).
    (vllm_plants.bad_words_skipped_at_draft_positions, "greedy-draft-draft_model-k1", "bad-words", 0),
    (vllm_plants.allowed_token_ids_skipped_at_draft_positions, "probabilistic-draft-draft_model-k1", "allowed-tokens", 0),
    (vllm_plants.min_tokens_skipped_at_draft_positions, "greedy-draft-draft_model-k1", "min-tokens-2", 0),
    # The same sampler bugs under the heads production runs: their drafts reach the same rejection sampler.
    (vllm_plants.lossless_ignore_top_p, "e1-eagle-k3", "temperature-0.7-top-p-0.8", 0),
    (vllm_plants.lossless_recovered_from_target, "e3-eagle3-k3", "temperature-0.7-top-p-0.8", 0),
    (vllm_plants.lossless_recovery_reuses_acceptance_noise, "heads-medusa-k3", "top-k-5", 0),
    (vllm_plants.lossless_no_temperature_on_speculative_positions, "mimo-mtp-k3", "temperature-0.7-top-p-0.8", 0),
]


@pytest.mark.parametrize("plant, where, setting, samples", PLANTS, ids=[f"{p[0].__name__}-{p[1]}" for p in PLANTS])
def test_planted_bug_is_rejected(lab, plant, where, setting, samples):
    if where not in lab.conditions:
        pytest.skip(f"{where} is not in this lossless config")
    lab.engine(where)
    with known_defects.reference_path(), plant():
        judgement, sample = lab.judge(where, setting, samples or None)
    assert sample.drafted_share >= MIN_DRAFTED_NGRAM
    assert not judgement.passed, f"{plant.__name__} went unnoticed: {judgement.describe()}"


LOGPROBS_PLANTS = [  # (planted bug, the logprobs mode it breaks): issue 25, vLLM #30846 and its mirror
    (vllm_plants.raw_logprobs_after_temperature_at_draft_positions, "raw_logprobs"),
    (vllm_plants.processed_logprobs_from_raw_logits_at_draft_positions, "processed_logprobs"),
]


@pytest.mark.parametrize("plant, mode", LOGPROBS_PLANTS, ids=[p[0].__name__ for p in LOGPROBS_PLANTS])
def test_planted_logprobs_bug_is_rejected(lab, plant, mode):
    where = "greedy-draft-draft_model-k1"
    if where not in lab.conditions:
        pytest.skip(f"{where} is not in this lossless config")
    lab.logprobs_engine(where, mode)
    with known_defects.reference_path(), plant():
        verdict = lab.logprobs(where, mode)
    assert verdict.after_first > 0
    assert any("differ from the target's" in p for p in verdict.problems), (
        f"{plant.__name__} went unnoticed (worst difference {verdict.worst:.2g} nats)")
