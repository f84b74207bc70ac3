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


def two_sample_g_test(a: Iterable[Hashable], b: Iterable[Hashable], min_expected: float = 5.0) -> FitResult:
    """G-test of homogeneity: were two samples drawn from one distribution? For models too large
    to enumerate exactly (real GPU pairings): the speculative engine's outcomes against the
    no-speculation engine's. Outcomes rarer than ``min_expected`` in either sample are pooled."""
    ca, cb = Counter(a), Counter(b)
    na, nb = sum(ca.values()), sum(cb.values())
    bins, pooled = [], [0, 0]
    for outcome in set(ca) | set(cb):
        total = ca[outcome] + cb[outcome]
        if min(total * na, total * nb) / (na + nb) >= min_expected:
            bins.append((repr(outcome), ca[outcome], cb[outcome]))
        else:
            pooled[0] += ca[outcome]
            pooled[1] += cb[outcome]
    if sum(pooled):
        bins.append(("pooled rare outcomes", pooled[0], pooled[1]))
    statistic, worst, worst_dev = 0.0, "", -1.0
    for label, oa, ob in bins:
        total = oa + ob
        for o, n in ((oa, na), (ob, nb)):
            e = total * n / (na + nb)
            statistic += 2.0 * o * math.log(o / e) if o > 0 else 0.0
        dev = abs(oa / na - ob / nb)
        if dev > worst_dev:
            worst_dev, worst = dev, f"worst bin {label}: {oa} of {na} against {ob} of {nb}"
    df = max(len(bins) - 1, 0)
    return FitResult(statistic, df, chi2_sf(statistic, df), na + nb, (), worst)


def chi2_isf(alpha: float, df: int) -> float:
    """The critical value c with P(chi-square(df) >= c) = alpha (bisection on chi2_sf)."""
    lo, hi = 0.0, max(10.0, 10.0 * df)
    while chi2_sf(hi, df) > alpha:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_sf(mid, df) > alpha else (lo, mid)
    return hi


def noncentrality_for_power(alpha: float, df: int, power: float = 0.99) -> float:
    """lambda such that a chi-square(df) test at level alpha rejects with probability ``power`` when
    the statistic is noncentral chi-square(df, lambda) (Patnaik's two-moment approximation)."""
    critical = chi2_isf(alpha, df)

    def rejects(lam: float) -> float:
        rho, nu = (df + 2 * lam) / (df + lam), (df + lam) ** 2 / (df + 2 * lam)
        return float(torch.special.gammaincc(torch.tensor(nu / 2, dtype=torch.float64),
                                             torch.tensor(critical / rho / 2, dtype=torch.float64)))

    lo, hi = 0.0, 10.0
    while rejects(hi) < power:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rejects(mid) < power else (lo, mid)
    return hi


def detectable_tv(probabilities: list[float], samples: int, alpha: float, df: int, power: float = 0.99) -> float:
    """The smallest total-variation shift that the test detects with probability ``power``, for the
    least visible kind of shift: mass moved between the two most likely outcomes. The G statistic's
    noncentrality for moving d is about samples * d^2 * (1/p_a + 1/p_b)."""
    top = sorted(probabilities, reverse=True)[:2]
    if len(top) < 2 or min(top) <= 0:
        return float("nan")
    lam = noncentrality_for_power(alpha, df, power)
    return math.sqrt(lam / (samples * (1 / top[0] + 1 / top[1])))
