"""One run judged against another run (no records): the statistics of the gate's acceptance and
latency checks (gate/verdict.py), tested apart from the records that feed them in a real run."""

from __future__ import annotations

import numpy as np

from specgate.core.results import RunResult, SpecCounters
from specgate.core.tolerances import with_defaults
from specgate.gate import verdict


def judge(base: RunResult, new: RunResult, tolerances: dict[str, float] | None = None,
          alpha: float = verdict.ALPHA, seed: int = 0) -> verdict.Verdict:
    """A run against another run of the same prompts in the same order, with the gate's own
    acceptance and latency checks and nothing else: isolates their statistics from the records."""
    tol = with_defaults(tolerances)
    if len(base.requests) != len(new.requests):
        return verdict.no_baseline(f"baseline has {len(base.requests)} requests, this run {len(new.requests)}")
    rng = np.random.default_rng(seed)
    checks: list[verdict.Check] = []
    sb, sn = _spec(base.requests), _spec(new.requests)
    if sb is not None and sn is not None:
        checks += verdict.acceptance_checks(sb, sn, [r.output_tokens for r in base.requests],
                                    [r.output_tokens for r in new.requests], tol["acceptance_rate"], alpha, rng)
    lat_b = np.array([r.latency_s or np.nan for r in base.requests], float)
    lat_n = np.array([r.latency_s or np.nan for r in new.requests], float)
    if np.isfinite(lat_b).all() and np.isfinite(lat_n).all() and (lat_b > 0).all() and (lat_n > 0).all():
        checks.append(verdict.latency_check(lat_b, lat_n, tol["latency"], alpha, rng))
    return verdict.combine(checks)


def _spec(requests) -> list[SpecCounters] | None:
    if not requests or any(r.spec is None for r in requests):
        return None
    return [r.spec for r in requests]
