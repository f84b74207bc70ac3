"""The speedup model against values worked out by hand."""

import pytest

from specgate.core import theory


def test_expected_tokens_per_step():
    assert theory.expected_tokens_per_step(0.5, 1) == pytest.approx(1.5)  # 1 + 0.5
    assert theory.expected_tokens_per_step(0.5, 3) == pytest.approx(1.875)  # 1 + .5 + .25 + .125
    assert theory.expected_tokens_per_step(0.0, 4) == pytest.approx(1.0)
    assert theory.expected_tokens_per_step(1.0, 4) == 5.0


def test_expected_speedup_and_best_k():
    # alpha 0.8, c 0.1: k=1 -> 1.8/1.1 = 1.636; k=3 -> 2.952/1.3 = 2.271; k=4 -> 3.3616/1.4 = 2.401.
    assert theory.expected_speedup(0.8, 1, 0.1) == pytest.approx(1.8 / 1.1)
    assert theory.expected_speedup(0.8, 4, 0.1) == pytest.approx(3.3616 / 1.4)
    # k=5: 3.68928/1.5 = 2.4595; k=6: 3.95142/1.6 = 2.4696; k=7: 4.16114/1.7 = 2.4477.
    assert theory.best_k(0.8, 0.1) == 6
    assert theory.best_k(0.2, 1.0) == 1  # a costly, poor draft: the smallest k


def test_alpha_inverts_expected_tokens():
    assert theory.alpha_from_mean_acceptance_length(1.875, 3) == pytest.approx(0.5, abs=1e-9)
    assert theory.alpha_from_mean_acceptance_length(1.0, 3) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("call", [lambda: theory.expected_tokens_per_step(1.2, 1),
                                  lambda: theory.expected_speedup(0.5, 1, -1),
                                  lambda: theory.alpha_from_mean_acceptance_length(5.0, 3)])
def test_out_of_range_inputs_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_speedup_model_from_stage_times():
    from specgate.core.metrics import cost_ratio, speedup_model
    from specgate.core.results import RequestRecord, RunResult, SpecCounters, StageTimes

    # Control: 100 steps in 0.2 s -> 2 ms per plain target step.
    control = RunResult("c", "sequential", 0, 1.0, (RequestRecord(1, 100, 1.0),),
                        stages=StageTimes(100, 0.2, 0.19, 0.0, 0, 0.0, 0, 0))
    # k=3, D=10 steps, A=8.75 per 10 -> mean acceptance length 1.875 -> alpha 0.5 (see above);
    # 30 draft tokens in 0.03 s -> 1 ms each -> c = 1 / 2 = 0.5.
    run = RunResult("r", "sequential", 3, 1.0, (RequestRecord(1, 100, 1.0),), SpecCounters(80, 240, 70, (40, 20, 10)),
                    stages=StageTimes(80, 0.5, 0.3, 0.03, 80, 0.01, 80, 30, drafts=10))
    assert cost_ratio(run, control) == pytest.approx(0.5)
    model = speedup_model(run, control)
    assert model["alpha"] == pytest.approx(0.5, abs=1e-9)
    # D = 10 of the 80 steps verified drafts: coverage 1/8. Tokens per step 1/8 * 1.875 + 7/8 = 1.109375;
    # cost per step 1 + 1/8 * 3 * 0.5 = 1.1875.
    assert model["draft_coverage"] == pytest.approx(0.125)
    assert model["predicted_speedup"] == pytest.approx(1.109375 / 1.1875)


def test_coverage_one_is_leviathans_formula_and_zero_is_plain_decoding():
    assert theory.expected_speedup_with_coverage(0.5, 3, 0.5, 1.0) == pytest.approx(1.875 / 2.5)
    assert theory.expected_speedup_with_coverage(0.9, 5, 0.2, 0.0) == pytest.approx(1.0)
    # Half the steps draft k=1 at alpha 0.8, c 0.1: (0.5 * 1.8 + 0.5) / (1 + 0.5 * 0.1) = 1.4 / 1.05.
    assert theory.expected_speedup_with_coverage(0.8, 1, 0.1, 0.5) == pytest.approx(1.4 / 1.05)


def test_stage_metrics_by_hand():
    from specgate.core.metrics import stage_metrics
    from specgate.core.results import StageTimes

    m = stage_metrics(StageTimes(steps=50, step_s=1.0, scoring_s=0.6, proposal_s=0.3, proposal_calls=50,
                                 verification_s=0.05, verification_calls=40, draft_tokens=150))
    assert m["proposal_ms_per_token"] == pytest.approx(2.0)  # 300 ms / 150 tokens
    assert m["scoring_ms_per_step"] == pytest.approx(12.0)  # 600 ms / 50 steps
    assert m["verification_ms_per_step"] == pytest.approx(1.25)  # 50 ms / 40 verifications
    assert m["stage_shares"] == pytest.approx({"scoring": 0.6, "proposal": 0.3, "verification": 0.05, "other": 0.05})


def test_best_k_of_a_sweep_measured_and_modelled():
    from specgate.report.sweep import best_k, series

    def entry(k, speedup, alpha, c):
        return {"conditions": {"pairing": "p", "method": "draft_model", "mode": "sequential", "prompt_set": "code",
                               "k": k}, "metrics": {"speedup": speedup, "alpha": alpha, "cost_ratio": c},
                "control": None}

    doc = {"runs": {f"k{k}": entry(k, s, 0.8, 0.1) for k, s in [(1, 1.2), (2, 1.5), (3, 1.4)]}}
    (s,) = series(doc)
    b = best_k(s)
    assert (b.measured_k, b.measured_speedup) == (2, 1.5)
    assert b.model_k == 6 and b.model_speedup == pytest.approx(3.95142 / 1.6, rel=1e-4)  # see above
