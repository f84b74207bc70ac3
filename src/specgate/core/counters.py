"""vLLM's counters by name and their sum over label sets (pure). One table for both readers: the
in-process engine's metrics (engines/outputs.snapshot, LLM.get_metrics) and a server's /metrics text
(prometheus.spec_counters), where Prometheus adds ``_total`` to every counter's name."""

from __future__ import annotations

from specgate.core.results import SpecCounters

SPEC = {
    "vllm:spec_decode_num_drafts": "drafts",
    "vllm:spec_decode_num_draft_tokens": "draft_tokens",
    "vllm:spec_decode_num_accepted_tokens": "accepted",
}
PER_POSITION = "vllm:spec_decode_num_accepted_tokens_per_pos"
# Counters a feature cell must move (matrix/features.Feature.counters).
ENGINE = {"vllm:prefix_cache_hits": "prefix_cache_hits", "vllm:num_preemptions": "num_preemptions"}


class Totals:
    """Sums of each counter over every label set (engines, models) it is reported under."""

    def __init__(self):
        self.spec = dict.fromkeys(SPEC.values(), 0)
        self.engine = dict.fromkeys(ENGINE.values(), 0)
        self.per_position: dict[int, int] = {}

    def add(self, name: str, value: float, position: int | None = None) -> None:
        name = name.removesuffix("_total")
        if name in SPEC:
            self.spec[SPEC[name]] += int(value)
        elif name in ENGINE:
            self.engine[ENGINE[name]] += int(value)
        elif name == PER_POSITION and position is not None:
            self.per_position[position] = self.per_position.get(position, 0) + int(value)

    def spec_counters(self) -> SpecCounters:
        pos = self.per_position
        return SpecCounters(accepted_per_pos=tuple(pos.get(i, 0) for i in range(max(pos) + 1)) if pos else (),
                            **self.spec)
