"""specgate.lossless.logprobs' judge on logits made here: right logprobs pass in each mode, the other
mode's fail, and a setting under which the modes coincide is refused as unable to see its subject."""

import pytest
import torch

from specgate.lossless import logprobs
from specgate.lossless.target_distribution import Setting

VOCAB, PROMPT, TOKENS = 32, (1, 2, 3), (4, 2, 9, 4)
LOGITS = torch.randn(len(PROMPT) + len(TOKENS), VOCAB, generator=torch.Generator().manual_seed(0)) * 3


def sequence_logits(ids):
    assert list(ids) == list(PROMPT) + list(TOKENS)
    return LOGITS


def emitted(mode, setting=logprobs.SETTING, drafted=True):
    e = logprobs.Emitted(PROMPT, TOKENS, (), drafted)
    return logprobs.Emitted(PROMPT, TOKENS, tuple(logprobs.expected(LOGITS, e, mode, setting)), drafted)


@pytest.mark.parametrize("mode", logprobs.MODES)
def test_the_right_logprobs_pass_and_the_other_modes_fail(mode):
    right = logprobs.judge([emitted(mode)] * 2, sequence_logits, mode)
    assert right.problems == () and right.compared == 8 and right.after_first == 6 and right.worst < 1e-9
    other = logprobs.MODES[1 - logprobs.MODES.index(mode)]
    wrong = logprobs.judge([emitted(other)], sequence_logits, mode)
    assert len(wrong.problems) == 1 and "differ from the target's" in wrong.problems[0], wrong.problems


def test_processed_logprobs_apply_the_penalty_to_prompt_and_earlier_output_then_the_temperature():
    e = logprobs.Emitted(PROMPT, TOKENS, (), True)
    got = logprobs.expected(LOGITS, e, "processed_logprobs")
    row = LOGITS[len(PROMPT) + 2].double()  # predicts TOKENS[3] = 4, after prompt and output 4, 2, 9
    for t in {1, 2, 3, 4, 9}:
        row[t] = row[t] / 1.3 if row[t] > 0 else row[t] * 1.3
    assert got[3] == pytest.approx(float((row / 0.7).log_softmax(-1)[4]), abs=1e-12)


def test_one_logprob_off_by_more_than_the_tolerance_fails():
    e = emitted("raw_logprobs")
    off = logprobs.Emitted(PROMPT, TOKENS, e.logprobs[:2] + (e.logprobs[2] + 2e-3,) + e.logprobs[3:], True)
    verdict = logprobs.judge([off], sequence_logits, "raw_logprobs")
    assert "1 of 4 logprobs" in verdict.problems[0] and "request 0 token 2" in verdict.problems[0]


def test_a_setting_under_which_the_modes_coincide_cannot_see_its_subject():
    plain = Setting("plain")
    verdict = logprobs.judge([emitted("raw_logprobs", plain)], sequence_logits, "raw_logprobs", setting=plain)
    assert verdict.problems == ("raw_logprobs and processed_logprobs differ by a median 0.0000 nats under plain, "
                                "under 20 x the tolerance: this check cannot tell the modes apart",)


def test_a_run_without_drafts_tested_nothing_speculative():
    verdict = logprobs.judge([emitted("raw_logprobs", drafted=False)], sequence_logits, "raw_logprobs")
    assert verdict.problems == ("no request drafted: the logprobs of speculative steps were not tested",)


def test_an_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'raw_logits'"):
        logprobs.expected(LOGITS, emitted("raw_logprobs"), "raw_logits")
