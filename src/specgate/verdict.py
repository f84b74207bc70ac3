"""Statistics: a run against its baseline -> pass or fail, with one readable reason per check.

Both runs use the same prompts in the same order, so requests are paired. Tokens within a
request are correlated (one hard prompt rejects many drafts), so intervals come from a
bootstrap over requests (resampling whole requests, the same indices for both runs), never
from treating tokens as independent.

A check fails only when the change is beyond the pairing's tolerance *and* significant: the
one-sided bootstrap bound at level alpha excludes no change. Under no real change a check
therefore fails with probability at most alpha (lower with a tolerance). The acceptance
checks share alpha (Bonferroni); latency has its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .results import RunResult, SpecCounters

DEFAULT_TOLERANCES = {"acceptance_rate": 0.03, "latency": 0.10, "tokens_per_s": 0.10}
ALPHA = 0.01
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Check:
    metric: str
    passed: bool
    baseline: float
    new: float
    change: float  # relative: new / baseline - 1
    interval: tuple[float, float] | None  # bootstrap interval of the relative change
    tolerance: float
    reason: str


@dataclass(frozen=True)
class Verdict:
    status: str  # "pass", "fail" or "no-baseline"
    reason: str
    checks: tuple[Check, ...] = field(default=())

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def no_baseline(reason: str) -> Verdict:
    return Verdict("no-baseline", reason)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _ratio_check(metric: str, num: tuple[np.ndarray, np.ndarray], den: tuple[np.ndarray, np.ndarray],
                 tolerance: float, alpha: float, rng: np.random.Generator) -> Check:
    """Ratio-of-sums metric (higher is better), e.g. acceptance = sum(A) / sum(T) over requests."""
    (nb, nn), (db, dn) = num, den
    base = nb.sum() / db.sum() if db.sum() else float("nan")
    new = nn.sum() / dn.sum() if dn.sum() else float("nan")
    if not np.isfinite(base) or base == 0 or not np.isfinite(new):
        return Check(metric, True, base, new, 0.0, None, tolerance,
                     f"{metric}: baseline {_fmt(base)}, new {_fmt(new)}: no relative change to test")
    idx = rng.integers(0, len(nb), size=(BOOTSTRAP, len(nb)))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = (nn[idx].sum(1) / dn[idx].sum(1)) / (nb[idx].sum(1) / db[idx].sum(1)) - 1.0
    boot = np.nan_to_num(boot, nan=0.0, posinf=0.0, neginf=0.0)
    change = new / base - 1.0
    upper = float(np.quantile(boot, 1.0 - alpha))
    failed = change < -tolerance and upper < 0.0
    word = "fell" if change < 0 else "rose"
    reason = (f"{metric} {word} {abs(change):.1%} ({_fmt(base)} -> {_fmt(new)}; {1 - alpha:.0%} upper bound of the "
              f"change {upper:+.1%}); tolerance {tolerance:.0%}")
    return Check(metric, not failed, base, new, change, (float(np.quantile(boot, alpha)), upper), tolerance, reason)


def _latency_check(base: np.ndarray, new: np.ndarray, tolerance: float, alpha: float,
                   rng: np.random.Generator) -> Check:
    """Paired per-request latency ratio (lower is better): geometric mean of new / baseline."""
    logs = np.log(new / base)
    idx = rng.integers(0, len(logs), size=(BOOTSTRAP, len(logs)))
    boot = np.exp(logs[idx].mean(1)) - 1.0
    change = float(np.exp(logs.mean()) - 1.0)
    lower = float(np.quantile(boot, alpha))
    failed = change > tolerance and lower > 0.0
    word = "rose" if change > 0 else "fell"
    reason = (f"latency {word} {abs(change):.1%} (mean {_fmt(base.mean())}s -> {_fmt(new.mean())}s; "
              f"{1 - alpha:.0%} lower bound of the change {lower:+.1%}); tolerance {tolerance:.0%}")
    return Check("latency", not failed, float(base.mean()), float(new.mean()), change,
                 (lower, float(np.quantile(boot, 1.0 - alpha))), tolerance, reason)


def _throughput_check(base: float, new: float, tolerance: float) -> Check:
    change = new / base - 1.0 if base > 0 else 0.0
    failed = change < -tolerance
    reason = (f"tokens/s changed {change:+.1%} ({_fmt(base)} -> {_fmt(new)}; one value per run, tolerance "
              f"only); tolerance {tolerance:.0%}")
    return Check("tokens_per_s", not failed, base, new, change, None, tolerance, reason)


def _spec(run: RunResult) -> list[SpecCounters] | None:
    if any(r.spec is None for r in run.requests):
        return None
    return [r.spec for r in run.requests]


def judge(base: RunResult, new: RunResult, tolerances: dict[str, float] | None = None,
          alpha: float = ALPHA, seed: int = 0) -> Verdict:
    """Compare a run with its baseline run (same prompts, same order)."""
    tol = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    if len(base.requests) != len(new.requests):
        return no_baseline(f"baseline has {len(base.requests)} requests, this run {len(new.requests)}")
    rng = np.random.default_rng(seed)
    checks: list[Check] = []
    sb, sn = _spec(base), _spec(new)
    if sb is not None and sn is not None and sum(s.drafts for s in sb) > 0:
        k = max(len(s.accepted_per_pos) for s in sb + sn)
        pos = lambda specs, i: np.array([s.accepted_per_pos[i] if i < len(s.accepted_per_pos) else 0 for s in specs], float)
        col = lambda specs, attr: np.array([getattr(s, attr) for s in specs], float)
        ratios = {
            "acceptance_rate": ((col(sb, "accepted"), col(sn, "accepted")), (col(sb, "draft_tokens"), col(sn, "draft_tokens"))),
            "mean_acceptance_length": ((col(sb, "accepted") + col(sb, "drafts"), col(sn, "accepted") + col(sn, "drafts")),
                                       (col(sb, "drafts"), col(sn, "drafts"))),
        }
        for i in range(k):
            ratios[f"acceptance_pos{i + 1}"] = ((pos(sb, i), pos(sn, i)), (col(sb, "drafts"), col(sn, "drafts")))
        for metric, (num, den) in ratios.items():
            checks.append(_ratio_check(metric, num, den, tol["acceptance_rate"], alpha / len(ratios), rng))
    lat_b = np.array([r.latency_s or np.nan for r in base.requests], float)
    lat_n = np.array([r.latency_s or np.nan for r in new.requests], float)
    if np.isfinite(lat_b).all() and np.isfinite(lat_n).all() and (lat_b > 0).all() and (lat_n > 0).all():
        checks.append(_latency_check(lat_b, lat_n, tol["latency"], alpha, rng))
    if new.mode == "batch":
        from .metrics import tokens_per_s

        checks.append(_throughput_check(tokens_per_s(base), tokens_per_s(new), tol["tokens_per_s"]))
    failed = [c for c in checks if not c.passed]
    if failed:
        return Verdict("fail", "; ".join(c.reason for c in failed), tuple(checks))
    return Verdict("pass", f"{len(checks)} checks within tolerance", tuple(checks))
