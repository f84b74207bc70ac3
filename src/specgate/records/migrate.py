"""Schema-1 baselines (one file per hardware tag, every record tied to its vLLM and torch
versions) -> schema 2 (portable acceptance records plus per-hardware timing records), without
re-measuring anything. Model paths become content ids, resolved through the pairings file the
records were measured from."""

from __future__ import annotations

from pathlib import Path

from specgate.matrix import config
from specgate.records.baselines import BaselineError, BaselineStore, PORTABLE, TIMING, condition_facts, matching_facts
from specgate.records.document import read_json

MODEL_KEYS = ("target", "draft")


def _comparable(facts: dict) -> dict:
    return {k: v for k, v in facts.items() if k not in MODEL_KEYS + ("target_path", "draft_path")}


def migrate(folder: Path, pairings: Path) -> list[str]:
    """Convert every schema-1 file in ``folder``; returns one line per file. The old files are
    left in place for the user to delete (git shows the conversion as a diff)."""
    by_id = {c.id: c for c in config.load(pairings).conditions()}
    lines = []
    old_files = [p for p in sorted(folder.glob("*.json")) if p.name != "portable.json"]
    if not old_files:
        raise BaselineError(f"{folder}: no schema-1 baseline files (<hardware-tag>.json) to migrate")
    for path in old_files:
        doc = read_json(path, "baseline file", BaselineError)
        if doc.get("schema") != 1:
            lines.append(f"{path}: schema {doc.get('schema')}, not 1: left alone")
            continue
        hardware = doc["hardware"]
        portable, timing, skipped = {}, {}, []
        for cid, rec in doc["records"].items():
            c = by_id.get(cid)
            facts = condition_facts(c) if c is not None else None
            if facts is None or _comparable({**facts, "rounds": rec["conditions"].get("rounds")}) != \
                    _comparable(rec["conditions"]):
                skipped.append(cid)
                continue
            facts = {**facts, "rounds": rec["conditions"].get("rounds")}
            env = {**rec["environment"], "hardware": hardware}
            recorded = {k: env.get(k) for k in ("vllm", "torch", "hardware", "date", "commit")}
            reqs = rec["run"]["requests"]
            portable[cid] = {"conditions": matching_facts(facts, PORTABLE), "recorded": recorded,
                             "metrics": {k: rec["metrics"].get(k) for k in
                                         ("acceptance_rate", "mean_acceptance_length", "per_position_acceptance",
                                          "draft_coverage")},
                             "requests": [{"spec": r.get("spec"), "output_tokens": r["output_tokens"]} for r in reqs],
                             "counters": rec["run"]["counters"]}
            control = None if c.is_control else doc["records"].get(c.control.id)
            timing[cid] = {"conditions": matching_facts(facts, TIMING), "recorded": recorded,
                           "metrics": {k: rec["metrics"].get(k) for k in ("latency_mean_s", "latency_p50_s",
                                                                           "tokens_per_s", "speedup", "step_ms",
                                                                           "wall_s")},
                           "mode": rec["run"]["mode"], "wall_s": rec["run"]["wall_s"],
                           "latency_s": [r["latency_s"] for r in reqs],
                           "output_tokens": [r["output_tokens"] for r in reqs],
                           "control": None if control is None else {
                               "wall_s": control["run"]["wall_s"],
                               "latency_s": [r["latency_s"] for r in control["run"]["requests"]],
                               "output_tokens": [r["output_tokens"] for r in control["run"]["requests"]]}}
        written = BaselineStore(folder, hardware).save(portable, timing)
        lines.append(f"{path}: {len(portable)} records -> {', '.join(map(str, written))}"
                     + (f"; not in {pairings} or measured under other conditions, left out: {', '.join(skipped)}"
                        if skipped else "") + f"; delete {path} once you have checked the result")
    return lines
