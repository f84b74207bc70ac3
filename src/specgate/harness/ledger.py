"""Every run of a session: each condition's result and metrics, the control run of each workload
(speculative runs are measured against it), the feature cells vLLM refused, the conditions whose
test errored before a verdict (so a merged report cannot pass without them), and the results
document built from them in matrix order (so merged shards read like one run)."""

from __future__ import annotations

from specgate.core.metrics import RunMetrics, summarize
from specgate.core.results import RunResult
from specgate.gate.verdict import Verdict
from specgate.matrix.conditions import Condition, control_key
from specgate.records import document


class Ledger:
    def __init__(self):
        self.runs: dict[str, tuple[Condition, RunResult, RunMetrics]] = {}
        self.refused: dict[str, tuple[Condition, str]] = {}  # feature cells vLLM refused, with its reason
        self.code_paths: dict[str, dict] = {}  # condition id -> what one short request called
        # Conditions whose test failed before a verdict (setup, engine build, a crash): the reason and
        # its outcome class (core/outcomes.py).
        self.errored: dict[str, tuple[Condition, str, int]] = {}
        self._controls: dict[tuple, RunResult] = {}

    def __bool__(self) -> bool:
        return bool(self.runs or self.refused or self.errored)

    def has_control(self, condition: Condition) -> bool:
        return control_key(condition.control) in self._controls

    def control(self, condition: Condition) -> RunResult:
        """The no-speculation run on the same prompts and sampling (SpecgateSession.ensure_control)."""
        try:
            return self._controls[control_key(condition.control)]
        except KeyError:
            raise RuntimeError(f"{condition.id}: its control {condition.control.id} has not run; "
                               f"run it first (SpecgateSession.ensure_control)") from None

    def record(self, condition: Condition, result: RunResult) -> RunMetrics:
        if condition.is_control:
            self._controls[control_key(condition)] = result
        metrics = summarize(result, result if condition.is_control else self.control(condition))
        self.runs[condition.id] = (condition, result, metrics)
        return metrics

    def plain(self, condition: Condition) -> RunResult | None:
        """A feature cell's plain cell (the same pairing and k without the feature), if it ran."""
        found = self.runs.get(condition.plain.id) if condition.feature else None
        return found and found[1]

    def feature_cells(self) -> set[str]:
        return {cid for cid, (c, _, _) in self.runs.items() if c.feature}

    def note_code_path(self, condition: Condition, calls: dict | None) -> None:
        """What one short request of this condition called (engines/code_path.py), for its entry."""
        if calls:
            self.code_paths[condition.id] = calls

    def refuse(self, condition: Condition, reason: str) -> None:
        """A feature cell vLLM refused: in the document with vLLM's reason, without a run."""
        self.refused[condition.id] = (condition, reason)

    def error(self, condition: Condition, reason: str, outcome: int) -> None:
        """A condition whose test failed before any verdict: in the document as status "error"."""
        self.errored.setdefault(condition.id, (condition, reason, outcome))

    def document(self, environment: dict, facts, verdicts: dict, order: dict[str, int],
                 shard: tuple[int, int] | None = None) -> dict:
        """``facts``: condition -> its facts (judging.Judging.facts); ``order``: condition id -> its
        position in the whole (unsharded) matrix, so merged shards read like one run."""
        entries = {cid: (c, None, None) for cid, (c, _, _) in self.errored.items() if cid not in verdicts}
        entries.update({cid: (c, r, m) for cid, (c, r, m) in self.runs.items()})
        entries.update({cid: (c, None, None) for cid, (c, _) in self.refused.items()})
        verdicts = {**{cid: Verdict("error", reason) for cid, (_, reason, _) in self.errored.items()}, **verdicts}
        ordered = sorted(entries.items(), key=lambda kv: order.get(kv[0], len(order)))
        runs = {cid: document.entry(facts(c), c.pairing.tolerances, None if c.is_control else c.control.id,
                                    order.get(cid), {} if m is None else m.as_dict(),
                                    None if r is None else r.to_dict(), verdicts.get(cid),
                                    self.refused[cid][1] if cid in self.refused else None, self.code_paths.get(cid))
                for cid, (c, r, m) in ordered}
        for cid, entry in runs.items():
            if entry["verdict"] and entry["verdict"]["status"] == "error":
                entry["verdict"]["outcome"] = self.errored[cid][2]
        return document.build(environment, runs, shard)
