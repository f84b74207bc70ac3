"""A saved run (results document) built from hand-made records, for tests of reports and the CLI."""

from specgate.core.metrics import summarize
from specgate.core.results import RequestRecord, RunResult, SpecCounters, StageTimes
from specgate.records.document import SCHEMA


def sweep_doc():
    """A saved run of one control and two pairings at k = 1, 2, 3, with stage times.

    'good' accepts as the speedup model's i.i.d. alpha = 0.8 would: 125 steps emit E[tokens] =
    (1 - 0.8^(k+1)) / 0.2 each, i.e. 100, 180, 244 accepted drafts at k = 1, 2, 3."""
    def run(cid, k, accepted, wall):
        steps = 125 if k else 60
        stages = StageTimes(steps, wall * 0.9, wall * 0.5, wall * 0.3 if k else 0.0, steps if k else 0,
                            wall * 0.05 if k else 0.0, steps if k else 0, steps * k, drafts=steps if k else 0)
        if not k:
            return RunResult(cid, "sequential", k, wall, (RequestRecord(5, 60, wall),), SpecCounters(), stages)
        per_pos = tuple(accepted // k + (i < accepted % k) for i in range(k))  # sums to A, never rises
        counters = SpecCounters(steps, steps * k, accepted, per_pos)
        return RunResult(cid, "sequential", k, wall, (RequestRecord(5, 60, wall, counters),), counters, stages)

    control = run("t-nospec", 0, 0, 1.2)
    runs = {"t-nospec": ({"pairing": "t", "method": "none", "k": 0}, control, None)}
    for pairing, accepted in (("good", (100, 180, 244)), ("bad", (10, 12, 13))):
        for k in (1, 2, 3):
            r = run(f"{pairing}-draft_model-k{k}", k, accepted[k - 1], 1.0 + 0.1 * k)
            runs[r.condition_id] = ({"pairing": pairing, "method": "draft_model", "k": k}, r, "t-nospec")
    return {"schema": SCHEMA, "environment": {"hardware": "cpu-test-2c", "vllm": "0.32.0"}, "runs": {
        cid: {"conditions": {"mode": "sequential", "prompt_set": "code", **facts},
              "metrics": summarize(r, None if control_id is None else control).as_dict(), "run": r.to_dict(),
              "control": control_id, "order": order,
              "verdict": {"status": "pass", "reason": "5 checks within tolerance", "notes": [], "checks": []}}
        for order, (cid, (facts, r, control_id)) in enumerate(runs.items())}}
