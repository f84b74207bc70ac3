"""The speedup model against values worked out by hand."""

import pytest

from specgate import theory


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
