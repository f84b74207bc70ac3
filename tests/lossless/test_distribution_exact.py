"""Exact (noise-free) properties of the reference speculative sampler, over random cases.

Hypothesis draws target and draft logits of vocabulary 2..64, k 1..6, temperatures, top-k and
top-p, and special shapes (near-zero, one-hot, identical, disjoint, greedy drafts). Runs are
derandomized: the same examples every time.
"""

import torch
from hypothesis import given, settings, strategies as st

from distribution_cases import KINDS, Case, check_expected_accepted, check_first_token, check_stream
from specgate.lossless import sampling

EXACT = settings(max_examples=150, deadline=None, derandomize=True)

cases = st.builds(
    Case,
    seed=st.integers(0, 2**31 - 1),
    vocab=st.integers(2, 64),
    k=st.integers(1, 6),
    kind=st.sampled_from(KINDS),
    temperature=st.sampled_from([0.0, 0.3, 1.0, 1.7]),
    top_k=st.integers(0, 64),
    top_p=st.floats(0.05, 1.0),
)
small_cases = st.builds(
    Case, seed=st.integers(0, 2**31 - 1), vocab=st.integers(2, 5), k=st.integers(1, 3), kind=st.sampled_from(KINDS),
    temperature=st.sampled_from([0.0, 0.5, 1.0]), top_k=st.integers(0, 5), top_p=st.floats(0.3, 1.0),
)


@EXACT
@given(cases)
def test_distribution_first_emitted_token_is_distributed_as_target(case):
    check_first_token(sampling.REFERENCE, case.block())


@EXACT
@given(cases)
def test_distribution_expected_acceptance_is_sum_of_min_p_q(case):
    check_expected_accepted(sampling.REFERENCE, case.block())


@EXACT
@given(small_cases)
def test_distribution_joint_of_generated_tokens_equals_target_joint(case):
    check_stream(sampling.REFERENCE, case.block(), case.k)


@EXACT
@given(small_cases)
def test_distribution_block_outcomes_sum_to_one(case):
    total = sum(sampling.block_distribution(case.block()).values())
    assert abs(total - 1.0) < 1e-9


@EXACT
@given(cases)
def test_distribution_greedy_draft_accepts_with_target_probability(case):
    """With q one-hot at the draft's argmax, draft x is accepted with probability p(x)."""
    block = Case(case.seed, case.vocab, 1, "greedy-draft", case.temperature or 1.0).block()
    drafted = int(block.q[0].argmax())
    assert abs(sampling.expected_accepted(block) - float(block.p[0, drafted])) < 1e-9


def test_distribution_processing_matches_hand_computed_filters():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0], dtype=torch.float64)
    soft = logits.softmax(-1)
    top2 = sampling.process_logits(logits, 1.0, top_k=2)
    assert torch.allclose(top2, torch.tensor([soft[0], soft[1], 0, 0]) / (soft[0] + soft[1]))
    # top_p = 0.7: p = [0.644, 0.237, ...]; 0.644 < 0.7, so the second token is kept too.
    assert torch.equal(sampling.process_logits(logits, 1.0, top_p=0.7) > 0, torch.tensor([True, True, False, False]))
    assert torch.equal(sampling.process_logits(logits, 0.0), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))
    hot = sampling.process_logits(logits, 0.5)
    assert torch.allclose(hot, (logits / 0.5).softmax(-1))
