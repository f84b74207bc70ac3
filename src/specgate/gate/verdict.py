"""Statistics: a run against its baseline -> pass or fail, with one readable reason per check.

Both runs use the same prompts in the same order, so requests are paired. Tokens within a
request are correlated (one hard prompt rejects many drafts), so intervals come from a
bootstrap over requests (resampling whole requests, the same indices for both runs), never
from treating tokens as independent.

A check fails only when the change is beyond the pairing's tolerance *and* significant: the
bootstrap bound at level alpha excludes no change. Under no real change a check therefore fails
with probability at most alpha (lower with a tolerance). Acceptance is two-sided (a rise at
temperature 0 means verification changed); the acceptance checks share alpha (Bonferroni);
latency has its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from specgate.core.metrics import ACCEPTANCE_RATIOS
from specgate.core.results import SpecCounters

JUDGED = ("pass", "fail", "recorded", "unsupported", "known-defect")  # statuses that are a verdict
RERECORD = "if the change is intended, re-record with --specgate-update-baselines"
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
    one_sided: bool = False  # only a rise fails (latency, blocked); else a change either way (acceptance)
    confidence: float | None = None  # of ``interval`` (a bootstrap's central interval)


@dataclass(frozen=True)
class Verdict:
    # "pass", "fail", "no-baseline", "recorded"; feature cells also "unsupported" (vLLM refuses the
    # combination, as recorded) and "known-defect" (fails from a defect in engines/known_defects.py)
    status: str
    reason: str
    checks: tuple[Check, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())  # what was and was not judged, and against what
    # Where the records it was judged against came from: each record's "recorded" facts (vllm,
    # torch, hardware, date, commit), so a run against older records says so.
    sources: tuple[dict, ...] = field(default=())

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def no_baseline(reason: str) -> Verdict:
    return Verdict("no-baseline", reason)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _ratio_check(metric: str, num: tuple[np.ndarray, np.ndarray], den: tuple[np.ndarray, np.ndarray],
                 tolerance: float, alpha: float, rng: np.random.Generator, exact: bool = False) -> Check:
    """Ratio-of-sums metric, e.g. acceptance = sum(A) / sum(T) over requests. ``exact``: the runs
    are deterministic (temperature 0), so any change beyond tolerance is a fact, not a sample, and
    no significance is required; the interval is still reported."""
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
    # Two-sided: alpha is split between the tails.
    lower, upper = float(np.quantile(boot, alpha / 2)), float(np.quantile(boot, 1.0 - alpha / 2))
    fell = change < -tolerance and (exact or upper < 0.0)
    rose = change > tolerance and (exact or lower > 0.0)
    word = "fell" if change < 0 else "rose"
    bound = f"{1 - alpha:.2%} interval of the change [{lower:+.1%}, {upper:+.1%}]"
    reason = f"{metric} {word} {abs(change):.1%} ({_fmt(base)} -> {_fmt(new)}; {bound}); tolerance {tolerance:.0%}"
    if rose:
        reason += f"; {RERECORD} (e.g. a better draft)"
    return Check(metric, not (fell or rose), base, new, change, (lower, upper), tolerance, reason, confidence=1 - alpha)


def _geometric_change(logs: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """Relative change exp(mean(log ratios)) - 1 with its bootstrap bounds at alpha, 1 - alpha."""
    idx = rng.integers(0, len(logs), size=(BOOTSTRAP, len(logs)))
    boot = np.exp(logs[idx].mean(1)) - 1.0
    return float(np.exp(logs.mean()) - 1.0), float(np.quantile(boot, alpha)), float(np.quantile(boot, 1.0 - alpha))


def latency_check(base: np.ndarray, new: np.ndarray, tolerance: float, alpha: float,
                   rng: np.random.Generator, metric: str = "latency") -> Check:
    """Paired per-request latency ratio (lower is better): geometric mean of new / baseline.
    Also time to first token and inter-token latency (``metric`` names which)."""
    change, lower, upper = _geometric_change(np.log(new / base), alpha, rng)
    failed = change > tolerance and lower > 0.0
    word = "rose" if change > 0 else "fell"
    reason = (f"{metric} {word} {abs(change):.1%} (mean {_fmt(base.mean())}s -> {_fmt(new.mean())}s; "
              f"{1 - alpha:.0%} lower bound of the change {lower:+.1%}); tolerance {tolerance:.0%}")
    return Check(metric, not failed, float(base.mean()), float(new.mean()), change, (lower, upper), tolerance,
                 reason, one_sided=True, confidence=1 - 2 * alpha)


def acceptance_checks(sb: list[SpecCounters], sn: list[SpecCounters], out_b: list[int], out_n: list[int],
                      tolerance: float, alpha: float, rng: np.random.Generator, exact: bool = False) -> list[Check]:
    """Acceptance rate, mean acceptance length, each position, and how often speculation drafted
    (draft steps per output token), per request, against the baseline's: two-sided. ``exact`` at
    temperature 0 (see _ratio_check)."""
    if sum(s.drafts for s in sb) == 0:
        return []
    k = max(len(s.accepted_per_pos) for s in sb + sn)
    pos = lambda specs, i: np.array([s.accepted_per_pos[i] if i < len(s.accepted_per_pos) else 0 for s in specs], float)
    col = lambda specs, count: np.array([count(s) for s in specs], float)
    drafts = lambda s: s.drafts
    ratios = {name: ((col(sb, num), col(sn, num)), (col(sb, den), col(sn, den)))
              for name, (num, den) in ACCEPTANCE_RATIOS.items()}
    ratios["drafts_per_token"] = ((col(sb, drafts), col(sn, drafts)), (np.array(out_b, float), np.array(out_n, float)))
    for i in range(k):
        ratios[f"acceptance_pos{i + 1}"] = ((pos(sb, i), pos(sn, i)), (col(sb, drafts), col(sn, drafts)))
    return [_ratio_check(metric, num, den, tolerance, alpha / len(ratios), rng, exact)
            for metric, (num, den) in ratios.items()]


def _moved_counts(b: tuple, n: tuple, most: int = 3) -> str:
    """The counts that moved in one request, as vLLM names them: draft steps and draft tokens (a
    proposer or scheduler bug moves these), then accepted tokens by position (verification)."""
    (db, tb, ab, pb), (dn, tn, an, pn) = b, n
    moved = [f"{name} {x} -> {y}" for name, x, y in (("drafts", db, dn), ("draft tokens", tb, tn), ("accepted", ab, an))
             if x != y]
    moved += [f"position {i + 1} accepted {x} -> {y}" for i, (x, y) in enumerate(zip(pb, pn)) if x != y]
    return ", ".join(moved[:most]) + (", ..." if len(moved) > most else "")


def exact_acceptance_check(base: list[SpecCounters | None], new: list[SpecCounters | None],
                           prompt_ids: list[str]) -> Check:
    """Every request's acceptance counts (D, T, A and each position's a_i) equal to the record's.

    Only where the record's run was deterministic and its numerics are this run's: temperature 0,
    the same hardware tag and dtype. There a clean rerun reproduces every count (10 unchanged
    reruns of the CPU default, 3 of them under a one-core load: 0 of 13,120 requests moved, in 39
    conditions each; docs/baselines.md), so one count moved in one request is a change in what vLLM
    drafts or verifies, and fails: the 3% tolerance of the ratio checks let a planted drafter bug
    that moved acceptance by 0.2% pass. The ratio checks still run beside it and give the size."""
    k = max([len(s.accepted_per_pos) for s in base + new if s is not None] or [0])
    moved = [i for i, (b, n) in enumerate(zip(base, new)) if (b or SpecCounters()).counts(k) != (n or SpecCounters()).counts(k)]
    total = len(base)
    if not moved:
        return Check("acceptance_counts", True, float(total), float(total), 0.0, None, 0.0,
                     f"acceptance_counts: every one of {total} requests drafted and accepted exactly as recorded")
    i = moved[0]
    name = prompt_ids[i] if i < len(prompt_ids) else f"#{i}"
    reason = (f"acceptance_counts: {len(moved)} of {total} requests drafted or accepted other counts than recorded "
              f"(exact at temperature 0 on the recording hardware; first: prompt {name}, "
              f"{_moved_counts((base[i] or SpecCounters()).counts(k), (new[i] or SpecCounters()).counts(k))}); {RERECORD}")
    return Check("acceptance_counts", False, float(total), float(total - len(moved)), -len(moved) / total, None, 0.0,
                 reason)


def token_check(base: list[str | None], new: list[str | None], allowed: int, prompt_ids: list[str]) -> Check:
    """Each request's emitted-token digest against the baseline's (temperature 0)."""
    differ = [i for i, (b, n) in enumerate(zip(base, new)) if b is not None and b != n]
    names = ", ".join(prompt_ids[i] if i < len(prompt_ids) else f"#{i}" for i in differ[:3])
    reason = (f"tokens: {len(differ)} of {len(base)} requests emit other tokens than the baseline"
              + (f" ({names}{', ...' if len(differ) > 3 else ''})" if differ else "")
              + f"; allowed {allowed}")
    return Check("tokens", len(differ) <= allowed, float(len(base)), float(len(base) - len(differ)),
                 -len(differ) / max(len(base), 1), None, float(allowed), reason)


def paired_ratio_check(base: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray], tolerance: float,
                       alpha: float, rng: np.random.Generator, metric: str = "latency_vs_control",
                       what: str = "speculative / control latency per prompt") -> Check:
    """A latency over a reference latency timed beside it (the control's, or a vLLM-free one),
    prompt by prompt, in this run against the baseline's run: machine-wide drift between the
    two runs cancels (lower is better)."""
    (lat_b, ctl_b), (lat_n, ctl_n) = base, new
    change, lower, upper = _geometric_change(np.log(lat_n / ctl_n) - np.log(lat_b / ctl_b), alpha, rng)
    failed = change > tolerance and lower > 0.0
    word = "rose" if change > 0 else "fell"
    rb, rn = float(np.exp(np.log(lat_b / ctl_b).mean())), float(np.exp(np.log(lat_n / ctl_n).mean()))
    reason = (f"{metric} {word} {abs(change):.1%} ({what} {_fmt(rb)} -> "
              f"{_fmt(rn)}; {1 - alpha:.0%} lower bound of the change {lower:+.1%}); tolerance {tolerance:.0%}")
    return Check(metric, not failed, rb, rn, change, (lower, upper), tolerance, reason, one_sided=True,
                 confidence=1 - 2 * alpha)


def blocked_check(base: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray], tolerance: float,
                  alpha: float, rng: np.random.Generator) -> Check:
    """The share of wall time the engine thread was blocked, 1 - sum(running + runnable) / sum(wall),
    against the record's; ``base`` and ``new`` are (wall, running + runnable) seconds per request.
    Change and tolerance are in points of wall time, not relative. An in-process CPU engine never
    blocks (0.0-0.2% measured, with other processes competing for the cores too: that time is
    runnable, not blocked), so a sleep or a wait added to any step shows here whole, whatever the
    machine's speed or load; CPU work added to a step does not (the latency checks see that)."""
    (lat_b, busy_b), (lat_n, busy_n) = base, new
    blocked_b, blocked_n = 1.0 - busy_b.sum() / lat_b.sum(), 1.0 - busy_n.sum() / lat_n.sum()
    idx = rng.integers(0, len(lat_n), size=(BOOTSTRAP, len(lat_n)))
    boot = 1.0 - busy_n[idx].sum(1) / lat_n[idx].sum(1) - blocked_b
    change, lower, upper = blocked_n - blocked_b, float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))
    failed = change > tolerance and lower > 0.0
    reason = (f"blocked {'rose' if change > 0 else 'fell'} {abs(change) * 100:.1f} points (the engine thread was neither "
              f"running nor waiting for a CPU for {blocked_b:.1%} -> {blocked_n:.1%} of each request's wall time; "
              f"{1 - alpha:.0%} lower bound of the change {lower * 100:+.1f} points); tolerance {tolerance * 100:.0f} points")
    if failed:
        reason += ": something in the step now sleeps or waits (a lock, I/O, a sleep)"
    return Check("blocked", not failed, blocked_b, blocked_n, change, (lower, upper), tolerance, reason, one_sided=True,
                 confidence=1 - 2 * alpha)


def versions(recorded: dict, environment: dict) -> str:
    """'vllm 0.31.0 -> 0.32.0, torch 2.13.0+cpu' (or one version where both agree)."""
    parts = []
    for key in ("vllm", "torch"):
        old, new = recorded.get(key), environment.get(key)
        parts.append(f"{key} {new}" if old == new else f"{key} {old} -> {new}")
    return ", ".join(parts)


def combine(checks: list[Check], problems: list[str] = (), notes: list[str] = (), prefix: str = "") -> Verdict:
    """Checks and in-run problems -> one verdict; nothing judged -> 'no-baseline'."""
    failed = [c.reason for c in checks if not c.passed] + list(problems)
    if failed:
        return Verdict("fail", prefix + "; ".join(failed), tuple(checks), tuple(notes))
    if not checks:
        return Verdict("no-baseline", prefix + "; ".join(notes) if notes else "nothing to judge", (), tuple(notes))
    return Verdict("pass", f"{prefix}{len(checks)} checks within tolerance", tuple(checks), tuple(notes))
