"""A saved run judged against base records (a results file or the baseline folder, read by
records/from_results.py): what `specgate compare` and `specgate ab` print. Acceptance and tokens
whatever the machines and versions, timing only between runs on the same hardware (pure)."""

from __future__ import annotations

from specgate.core.results import RunResult
from specgate.gate import judge
from specgate.gate.verdict import Verdict
from specgate.records.baselines import BaselineFile


def judge_runs(new: dict, files: tuple[BaselineFile, BaselineFile], tolerances) -> dict[str, Verdict]:
    """Every run of ``new`` against the records; ``tolerances(entry)`` gives a run's tolerances."""
    env = new["environment"]
    verdicts = {}
    for cid, entry in new["runs"].items():
        own = entry.get("verdict") or {}
        if own.get("status") == "error":  # its test failed before a verdict: nothing ran to judge
            verdicts[cid] = Verdict("error", own.get("reason", "the test errored"))
            continue
        if own.get("status") == "known-defect":
            # Judged by its own run as a known vLLM defect of that version (engines/known_defects.py): what
            # the defect does is no regression of the version (per-request seeds: random acceptance).
            verdicts[cid] = Verdict("known-defect", own.get("reason", "known vLLM defect"))
            continue
        portable = files[0].find(cid, entry["conditions"])
        if entry.get("run") is None:
            verdicts[cid] = judge.judge_refused(entry.get("unsupported", "refused"), portable, env)
            continue
        run = RunResult.from_dict(entry["run"])
        control_entry = new["runs"].get(entry.get("control") or "")
        control = RunResult.from_dict(control_entry["run"]) if control_entry and control_entry.get("run") else None
        timing = ((None, "a feature cell's subject is correctness") if entry["conditions"].get("feature")
                  else files[1].find_timing(cid, entry["conditions"]))
        # A feature cell's in-run checks (its tokens, counters, reproducibility) passed in its own run
        # need no record, so a cell with nothing else to compare (a control at temperature > 0) is judged.
        in_run = tuple(c["metric"] for c in own.get("checks", ()) if c.get("passed")
                       and c.get("metric", "").startswith("feature "))
        evidence = judge.Evidence(run, control, portable, timing, [str(i) for i in range(len(run.requests))],
                                  in_run=in_run, calls=entry.get("code_path"))
        verdicts[cid] = judge.judge_condition(evidence, env, tolerances(entry))
    return verdicts
