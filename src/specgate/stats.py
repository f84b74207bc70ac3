"""Pure statistics: goodness-of-fit of sampled outcomes against an exact distribution."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Iterable

import torch


def chi2_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X ~ chi-square(df): the regularized upper incomplete gamma function."""
    if df <= 0:
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(df / 2.0, dtype=torch.float64),
                                         torch.tensor(statistic / 2.0, dtype=torch.float64)))


@dataclass(frozen=True)
class FitResult:
    statistic: float
    df: int
    p_value: float
    samples: int
    impossible: tuple  # outcomes seen that the exact distribution gives probability 0
    worst: str  # the bin that contributes most to the statistic, for failure messages

    def passes(self, alpha: float) -> bool:
        return not self.impossible and self.p_value >= alpha

    def describe(self) -> str:
        if self.impossible:
            return f"outcomes with probability 0 were sampled: {list(self.impossible)[:5]}"
        return f"G={self.statistic:.1f}, df={self.df}, p={self.p_value:.3g} over {self.samples} samples; {self.worst}"


def g_test(samples: Iterable[Hashable], expected: dict[Hashable, float], min_expected: float = 5.0) -> FitResult:
    """G-test (likelihood-ratio chi-square) of samples against exact outcome probabilities.

    Outcomes whose expected count is below ``min_expected`` are pooled into one bin so the
    chi-square approximation holds; a sampled outcome of probability 0 fails outright.
    """
    counts = Counter(samples)
    n = sum(counts.values())
    impossible = tuple(o for o in counts if expected.get(o, 0.0) <= 0.0)
    bins: list[tuple[str, float, int]] = []
    pooled_e, pooled_o = 0.0, 0
    for outcome, prob in expected.items():
        e = prob * n
        if e >= min_expected:
            bins.append((repr(outcome), e, counts.get(outcome, 0)))
        else:
            pooled_e += e
            pooled_o += counts.get(outcome, 0)
    if pooled_e > 0 or pooled_o > 0:
        bins.append(("pooled rare outcomes", pooled_e, pooled_o))
    statistic, worst, worst_term = 0.0, "", -1.0
    for label, e, o in bins:
        term = 2.0 * o * math.log(o / e) if o > 0 and e > 0 else 0.0
        statistic += term
        dev = abs(o - e) / math.sqrt(e) if e > 0 else float(o)
        if dev > worst_term:
            worst_term, worst = dev, f"worst bin {label}: observed {o}, expected {e:.1f}"
    # G as written omits the -2 sum (O - E) term, which is 0 when E sums to n.
    statistic += 2.0 * sum(e - o for _, e, o in bins)
    df = max(len(bins) - 1, 0)
    return FitResult(statistic, df, chi2_sf(statistic, df), n, impossible, worst)
