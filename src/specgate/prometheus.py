"""Prometheus text exposition (a vLLM server's /metrics) -> speculative-decoding counters (pure)."""

from __future__ import annotations

import re

from .results import SpecCounters

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
COUNTERS = {
    "vllm:spec_decode_num_drafts_total": "drafts",
    "vllm:spec_decode_num_draft_tokens_total": "draft_tokens",
    "vllm:spec_decode_num_accepted_tokens_total": "accepted",
}
PER_POSITION = "vllm:spec_decode_num_accepted_tokens_per_pos_total"


def spec_counters(text: str) -> SpecCounters:
    """Sum each counter over its label sets (engines, models); per-position counts by position."""
    totals = dict.fromkeys(COUNTERS.values(), 0)
    per_pos: dict[int, int] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, value = m["name"], int(float(m["value"]))
        if name in COUNTERS:
            totals[COUNTERS[name]] += value
        elif name == PER_POSITION:
            labels = dict(_LABEL.findall(m["labels"] or ""))
            pos = int(labels["position"])
            per_pos[pos] = per_pos.get(pos, 0) + value
    positions = tuple(per_pos.get(i, 0) for i in range(max(per_pos) + 1)) if per_pos else ()
    return SpecCounters(accepted_per_pos=positions, **totals)
