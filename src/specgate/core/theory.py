"""The speedup model of Leviathan et al. 2023 (pure math).

With i.i.d. per-token acceptance probability alpha and draft/target cost ratio c (time of one
draft forward over one target forward), one verification step with k drafts emits on average
(1 - alpha^(k+1)) / (1 - alpha) tokens and costs k c + 1 target-forward times.
"""

from __future__ import annotations


def expected_tokens_per_step(alpha: float, k: int) -> float:
    if not 0.0 <= alpha <= 1.0 or k < 0:
        raise ValueError(f"need 0 <= alpha <= 1 and k >= 0, got alpha={alpha}, k={k}")
    if alpha == 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def expected_speedup(alpha: float, k: int, cost_ratio: float) -> float:
    """Expected walltime speedup over plain decoding: E[tokens per step] / (k c + 1)."""
    if cost_ratio < 0:
        raise ValueError(f"cost ratio must be >= 0, got {cost_ratio}")
    return expected_tokens_per_step(alpha, k) / (k * cost_ratio + 1.0)


def expected_speedup_with_coverage(alpha: float, k: int, cost_ratio: float, coverage: float) -> float:
    """The same model when only a share ``coverage`` of steps carries drafts (ngram finds no match
    on the others, and prefill steps never draft): those steps emit one token and run no drafter.
    coverage = 1 is Leviathan et al.'s formula."""
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    if cost_ratio < 0:
        raise ValueError(f"cost ratio must be >= 0, got {cost_ratio}")
    tokens = coverage * expected_tokens_per_step(alpha, k) + (1.0 - coverage)
    return tokens / (coverage * k * cost_ratio + 1.0)


def best_k(alpha: float, cost_ratio: float, k_max: int = 16) -> int:
    """The k in 1..k_max with the highest expected speedup (the smallest k on ties)."""
    return max(range(1, k_max + 1), key=lambda k: (expected_speedup(alpha, k, cost_ratio), -k))


def alpha_from_mean_acceptance_length(mean_length: float, k: int, tol: float = 1e-12) -> float:
    """The alpha whose expected tokens per step at this k equals a measured mean acceptance length."""
    if not 1.0 <= mean_length <= k + 1:
        raise ValueError(f"mean acceptance length must be in [1, {k + 1}] at k={k}, got {mean_length}")
    lo, hi = 0.0, 1.0
    while hi - lo > tol:  # expected_tokens_per_step rises monotonically with alpha
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expected_tokens_per_step(mid, k) < mean_length else (lo, mid)
    return (lo + hi) / 2
