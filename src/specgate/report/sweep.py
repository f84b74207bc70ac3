"""A saved run read as sweeps over k: one series per (pairing, method, mode, prompt set), with its
no-speculation control, and the best k measured and predicted (pure; input is a results document).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

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
        groups.setdefault(key, []).append((facts["k"], entry["metrics"], entry.get("control")))
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
