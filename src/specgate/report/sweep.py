"""A saved run read as sweeps over k: one series per (pairing, method, mode, prompt set), with its
no-speculation control, and the best k measured and predicted; and as sweeps over context length:
the same drafter at the same k on pairings that differ in their prompts' length (pure; input is a
results document).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from specgate.core import theory

SERIES_KEYS = ("pairing", "method", "mode", "prompt_set", "concurrency")


@dataclass(frozen=True)
class Series:
    label: str
    facts: dict
    points: tuple[tuple[int, dict], ...]  # (k, metrics), ascending k
    control: dict | None  # the control run's metrics

    def values(self, metric: str) -> tuple[list[int], list[float]]:
        """k and metric for the points where the metric exists."""
        pts = [(k, m.get(metric)) for k, m in self.points if m.get(metric) is not None]
        return [k for k, _ in pts], [v for _, v in pts]


def series(doc: dict) -> list[Series]:
    runs = doc["runs"]
    groups: dict[tuple, list[tuple[int, dict, str | None]]] = {}
    facts_of: dict[tuple, dict] = {}
    for entry in runs.values():
        facts = entry["conditions"]
        if facts["method"] == "none" or facts.get("feature"):
            continue  # feature cells are checks at one k, not points of a sweep
        key = tuple(facts.get(k) for k in SERIES_KEYS)
        groups.setdefault(key, []).append((facts["k"], {**entry["metrics"], **_drawn_extras(entry)}, entry.get("control")))
        facts_of.setdefault(key, facts)
    # Name only what varies, so labels stay short: "fixture-aligned" rather than every field.
    varying = [i for i in range(1, len(SERIES_KEYS)) if len({key[i] for key in groups}) > 1]
    out = []
    for key, pts in groups.items():
        label = key[0] + "".join(f" {'c=' if SERIES_KEYS[i] == 'concurrency' else ''}{key[i]}" for i in varying
                                 if key[i] is not None)
        control_id = next((c for _, _, c in pts if c), None)
        control = runs[control_id]["metrics"] if control_id in runs else None
        out.append(Series(label, facts_of[key], tuple(sorted(((k, m) for k, m, _ in pts), key=lambda p: p[0])),
                          control))
    return out


# What a sweep over context length holds fixed: pairings that agree on all of these and differ in
# their prompts (the long-code set's context_chars buckets) are one series.
CONTEXT_KEYS = ("target", "draft", "method", "k", "mode", "prompt_set", "temperature")


@dataclass(frozen=True)
class ContextSeries:
    label: str
    points: tuple[tuple[float, str, dict], ...]  # (mean prompt tokens, pairing, metrics), ascending


def context_series(doc: dict) -> list[ContextSeries]:
    """One series per drafter x k whose pairings ran prompts of different lengths; x is a
    condition's mean prompt length in tokens (of its requests, as the engine counted them)."""
    groups: dict[tuple, list[tuple[float, str, dict]]] = {}
    for entry in doc["runs"].values():
        facts = entry["conditions"]
        requests = (entry.get("run") or {}).get("requests") or []
        lengths = [r["prompt_tokens"] for r in requests if r.get("prompt_tokens")]
        if facts["method"] == "none" or facts.get("feature") or not lengths:
            continue
        key = tuple(facts.get(k) for k in CONTEXT_KEYS)
        groups.setdefault(key, []).append((sum(lengths) / len(lengths), facts["pairing"],
                                           {**entry["metrics"], **_drawn_extras(entry)}))
    swept = {key: pts for key, pts in groups.items()
             if len({pairing for _, pairing, _ in pts}) > 1 and len({round(x) for x, _, _ in pts}) > 1}
    varying = [i for i, name in enumerate(CONTEXT_KEYS)
               if name in ("target", "mode", "prompt_set", "temperature") and len({key[i] for key in swept}) > 1]
    out = []
    for key, pts in swept.items():
        facts = dict(zip(CONTEXT_KEYS, key))
        label = f"{facts['method']} k={facts['k']}" + "".join(f" {key[i]}" for i in varying)
        out.append(ContextSeries(label, tuple(sorted(pts, key=lambda p: p[0]))))
    return sorted(out, key=lambda s: s.label)


INTERVAL_LEVEL = 0.95  # of the charts' error bars: a bootstrap over the run's requests
_BOOTSTRAP = 1000


def _drawn_extras(entry: dict) -> dict:
    """What the charts against k draw beside a point: each metric's interval over requests
    ("<metric>_interval") and its value in the baseline the run was judged against
    ("<metric>_baseline", from the verdict's relative change: baseline = new / (1 + change))."""
    extras = {}
    requests = (entry.get("run") or {}).get("requests") or []
    specs = [r["spec"] for r in requests if r.get("spec")]
    if specs and len(specs) == len(requests):
        accepted = np.array([s["accepted"] for s in specs], float)
        drafted = np.array([s["draft_tokens"] for s in specs], float)
        extras["acceptance_rate_interval"] = ratio_interval(accepted, drafted)
    latencies = np.array([r["latency_s"] for r in requests if r.get("latency_s")], float)
    if len(latencies) == len(requests) and len(latencies) > 1:
        extras["latency_mean_s_interval"] = ratio_interval(latencies, np.ones_like(latencies))
    metrics = entry.get("metrics") or {}
    for check in (entry.get("verdict") or {}).get("checks", []):
        metric, change = check.get("metric"), check.get("change")
        if metric == "acceptance_rate" and change is not None and change > -1 and metrics.get(metric) is not None:
            extras[f"{metric}_baseline"] = metrics[metric] / (1 + change)
    return extras


def ratio_interval(num: np.ndarray, den: np.ndarray, level: float = INTERVAL_LEVEL,
                   seed: int = 0) -> tuple[float, float] | None:
    """Central ``level`` bootstrap interval of sum(num) / sum(den), resampling whole requests (their
    tokens are correlated: docs/metrics.md); None where there is nothing to resample."""
    if len(num) < 2 or den.sum() <= 0:
        return None
    idx = np.random.default_rng(seed).integers(0, len(num), size=(_BOOTSTRAP, len(num)))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = num[idx].sum(1) / den[idx].sum(1)
    boot = boot[np.isfinite(boot)]
    alpha = (1 - level) / 2
    return (float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))) if len(boot) else None


@dataclass(frozen=True)
class BestK:
    label: str
    measured_k: int | None  # the swept k with the highest measured speedup
    measured_speedup: float | None
    model_k: int | None  # best k in 1..16 under the speedup model with this series' alpha and c
    model_speedup: float | None
    alpha: float | None
    cost_ratio: float | None


def best_k(s: Series, k_max: int = 16) -> BestK:
    ks, speedups = s.values("speedup")
    measured = max(zip(speedups, ks), default=(None, None), key=lambda p: (p[0], -p[1]))
    _, alphas = s.values("alpha")
    _, costs = s.values("cost_ratio")
    # alpha and c are nearly constant in k under the model's assumptions; the median over the
    # sweep is robust to one noisy point.
    alpha = statistics.median(alphas) if alphas else None
    c = statistics.median(costs) if costs else None
    model_k = model_speedup = None
    if alpha is not None and c is not None:
        model_k = theory.best_k(alpha, c, k_max)
        model_speedup = theory.expected_speedup(alpha, model_k, c)
    return BestK(s.label, measured[1], measured[0], model_k, model_speedup, alpha, c)
