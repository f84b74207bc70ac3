"""Pure parts of the lossless-sampling tests: the target's sampling rules, the bins, the two-sample
test and the power figure. Fixed seeds throughout."""

import math

import numpy as np
import torch

from specgate.lossless import stats, whole_engine
from specgate.lossless.target_distribution import OTHER, Setting, process, two_token_distribution


def test_chi2_critical_values_match_the_tables():
    assert math.isclose(stats.chi2_isf(0.05, 1), 3.8415, rel_tol=1e-3)
    assert math.isclose(stats.chi2_isf(0.01, 10), 23.209, rel_tol=1e-3)


def test_detectable_shift_shrinks_with_the_square_root_of_the_sample():
    probs = [0.4, 0.3, 0.2, 0.1]
    small, large = (stats.detectable_tv(probs, n, 1e-6, 3) for n in (1000, 4000))
    assert math.isclose(small / large, 2.0, rel_tol=1e-6)


def test_two_sample_test_accepts_the_same_distribution_and_rejects_a_shift():
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.3, 0.15, 0.05])
    a, b = rng.choice(4, 3000, p=p).tolist(), rng.choice(4, 3000, p=p).tolist()
    assert stats.two_sample_g_test(a, b).p_value > 1e-3
    shifted = rng.choice(4, 3000, p=[0.4, 0.4, 0.15, 0.05]).tolist()
    assert stats.two_sample_g_test(a, shifted).p_value < 1e-6


def test_sampling_rules():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    probs = process(logits, Setting("m", min_p=0.3), set())
    assert probs[2] == 0 and probs[3] == 0 and probs[1] > 0  # e^-1 > 0.3 > e^-2 relative to the max
    assert process(logits, Setting("k", top_k=1), set()).tolist() == [1.0, 0.0, 0.0, 0.0]
    penalised = process(logits, Setting("r", repetition_penalty=2.0), {0})
    assert penalised[0] < process(logits, Setting("t"), set())[0]  # a seen token with a positive logit loses


def test_bins_cover_the_distribution_and_impossible_pairs_stay_impossible():
    vocab = 6
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(vocab + 1, vocab, generator=gen)

    def forward(ids):  # a toy model: the next token depends on the last one
        return table[ids[:, -1]]

    dist = two_token_distribution(forward, [vocab], Setting("p", top_p=0.7), max_first=3)
    bins = dist.bins(min_probability=0.01)
    assert math.isclose(sum(bins.values()), 1.0, abs_tol=1e-9)
    t1 = next(iter(dist.second))
    banned = int((dist.second[t1] == 0).nonzero()[0])
    assert dist.bin_of(t1, banned, bins) not in bins  # probability 0: g_test fails it outright
    sample = whole_engine.Sample([(t1, banned)] * 10, 10)
    assert whole_engine.judge_exact(dist, sample).joint.impossible
    assert (OTHER,) in bins or len(dist.second) == int((dist.first > 0).sum())


def _toy(vocab=40, seed=1):
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(vocab, vocab, generator=gen) * 0.3
    likely = torch.zeros(vocab)
    likely[3] = 2.0  # token 3 (in the prompt) is likely after anything

    def forward(ids):  # flat over many first tokens, so the joint's bins are sparse
        return table[ids[:, -1]] + likely

    return forward, [3, 3, 3]


def _draw(dist, n, seed):
    gen = torch.Generator().manual_seed(seed)
    firsts = torch.multinomial(dist.first, n, replacement=True, generator=gen).tolist()
    return whole_engine.Sample([(t1, int(torch.multinomial(dist.second[t1], 1, generator=gen)))
                                for t1 in firsts], n)


def test_a_setting_ignored_at_token_2_is_seen_where_the_joint_pools_it_away():
    """A penalty on a token that is likely second after every first token: ignored at token 2, it moves
    mass inside the joint's pooled bins, which only token 2's own marginal bins show."""
    forward, prompt = _toy()
    s = Setting("r", repetition_penalty=3.0)
    dist = two_token_distribution(forward, prompt, s)
    ignored = two_token_distribution(forward, prompt, s, second_under=s.off)
    shift, detectable, test = whole_engine.visibility(dist, ignored, 3000)
    assert test == "token 2" and shift >= 2 * detectable
    assert not whole_engine.judge_exact(dist, _draw(ignored, 3000, seed=5)).passed
    # and a sample of the right distribution passes (false-failure probability 1e-6; fixed seed)
    assert whole_engine.judge_exact(dist, _draw(dist, 3000, seed=6)).passed
    plain = Setting("t")
    assert plain.off is None and s.off.sampling_kwargs() == plain.sampling_kwargs()


def test_token_masks_follow_vllm_s_rules_by_position():
    from specgate.lossless.target_distribution import TokenMasks

    def banned(masks, output):
        return [i for i, x in enumerate(masks.apply(torch.zeros(6), output).tolist()) if x == -torch.inf]

    bad = TokenMasks(bad=((2,), (4, 5)))
    assert banned(bad, []) == [2] and banned(bad, [4]) == [2, 5] and banned(bad, [3]) == [2]
    assert banned(TokenMasks(allowed=frozenset({1, 3})), []) == [0, 2, 4, 5]
    held = TokenMasks(stops=frozenset({0, 5}), min_tokens=2)
    assert banned(held, []) == [0, 5] and banned(held, [1]) == [0, 5] and banned(held, [1, 2]) == []


def test_a_mask_setting_resolves_its_texts_and_switches_off():
    vocab = {".": [7], " .": [8], ":": [9], "ab": [1, 2], " ab": [3, 2]}
    encode = vocab.__getitem__
    s = Setting("m", bad_words=(".", "ab"), min_tokens=2, stop_token_texts=(":",))
    masks = s.masks(encode, eos=0)
    assert masks.bad == ((7,), (8,), (1, 2), (3, 2)) and masks.stops == {9, 0} and masks.min_tokens == 2
    assert s.request_kwargs(encode) == {**Setting("x").sampling_kwargs(), "bad_words": [".", "ab"],
                                        "min_tokens": 2, "stop_token_ids": [9]}
    assert s.off is not None and s.off.masks(encode) == type(masks)()
    assert Setting("a", allowed_token_texts=("ab", ":")).masks(encode).allowed == {1, 2, 9}
