"""Prometheus text exposition (a vLLM server's /metrics) -> speculative-decoding counters, read
with prometheus_client's parser (a dependency of vLLM) and summed through counters.Totals."""

from __future__ import annotations

from specgate.core.counters import Totals
from specgate.core.results import SpecCounters


def spec_counters(text: str) -> SpecCounters:
    """Sum each counter over its label sets (engines, models); per-position counts by position."""
    from prometheus_client.parser import text_string_to_metric_families

    totals = Totals()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            position = sample.labels.get("position")
            totals.add(sample.name, sample.value, int(position) if position is not None else None)
    return totals.spec_counters()
