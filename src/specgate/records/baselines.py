"""Baseline records: build, load, match and save them (atomically; a file is never half-written).

Each record is keyed on what physically determines its figures (docs/baselines.md):

- ``baselines/portable.json``: acceptance (per-request vLLM counters) and, at temperature 0, a
  digest of every request's emitted tokens. They depend on the models' content, dtype, workload,
  sampling, method, k and speculative config, not on the machine or the vLLM version, so they
  are judged on any machine::

      {"schema": 2, "kind": "portable", "records": {CONDITION_ID: RECORD}}

- ``baselines/timing/<hardware-tag>.json``: latencies, each speculative request paired with the
  no-speculation control's latency for the same prompt in the same run. Judged only on the same
  hardware tag::

      {"schema": 2, "kind": "timing", "hardware": TAG, "records": {CONDITION_ID: RECORD}}

Every record carries the environment it was recorded in (vLLM, torch, hardware, date, commit):
versions are shown in each verdict and never a reason to skip a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specgate.matrix.conditions import Condition
from specgate.records.document import DocumentError, dumps, read_json, write_atomic
from specgate.records.fingerprint import model_id, text_digest, tokens_digest

SCHEMA = 2
PORTABLE, TIMING = "portable", "timing"
# Facts that change timings but not what the engine emits or accepts.
TIMING_ONLY = ("rounds", "paired_control", "machine_reference", "threads")
# Shown in results, never matched: where the models were on the recording machine.
DISPLAY_ONLY = ("target_path", "draft_path")
RECORDED = ("vllm", "torch", "hardware", "date", "commit")


class BaselineError(DocumentError):
    """A baseline file cannot be used; the message says which file, why, and what to do."""


def condition_facts(c: Condition, dropped: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Everything about a condition that changes its numbers, as plain JSON values; models by content.
    ``dropped``: the prompt ids max_prompt_tokens left out (another tokenizer or file drops others)."""
    p = c.pairing  # for a control, the control pairing: no draft, no speculative keys
    return {
        "pairing": p.name, "method": c.method, "k": c.k, "mode": c.mode,
        **({"concurrency": c.concurrency} if c.mode == "serving" else {}),
        "target": model_id(p.target), "draft": model_id(p.draft), "target_path": p.target, "draft_path": p.draft,
        "prompt_set": p.prompt_set, **({"prompt_options": dict(sorted(p.prompt_options.items()))}
                                       if p.prompt_options else {}),
        "num_prompts": p.num_prompts, "max_new_tokens": p.max_new_tokens,
        "temperature": c.temperature, "top_p": p.top_p, "top_k": p.top_k, "seed": p.seed,
        "ignore_eos": p.ignore_eos, "instruct": p.instruct, "dtype": p.dtype, "rounds": p.rounds,
        **({"threads": p.threads} if p.threads else {}),
        **({"paired_control": True} if p.paired_control and c.mode == "sequential" and not c.is_control else {}),
        **({"machine_reference": True} if p.machine_reference and c.mode == "sequential" and c.is_control else {}),
        "engine": dict(sorted(p.engine.items())), "speculative": dict(sorted(p.speculative.items())),
        **({"works_around": list(c.works_around)} if c.works_around else {}),
        **({"feature": c.feature, "feature_engine": dict(sorted(p.features.get(c.feature, {}).items()))}
           if c.feature else {}),
        **({"prompts_dropped": {"count": len(dropped), "ids": text_digest("\n".join(sorted(dropped)))}}
           if dropped is not None else {}),
    }


def matching_facts(facts: dict[str, Any], kind: str) -> dict[str, Any]:
    drop = DISPLAY_ONLY + (TIMING_ONLY if kind == PORTABLE else ())
    return {k: v for k, v in facts.items() if k not in drop}


def recorded(environment: dict) -> dict:
    return {k: environment.get(k) for k in RECORDED}


def portable_record(facts: dict, environment: dict, metrics: dict, run: dict) -> dict:
    """Acceptance counts per request and, at temperature 0, each request's token digest."""
    greedy = facts.get("temperature") == 0.0
    requests = [{"spec": r.get("spec"), "output_tokens": r["output_tokens"],
                 **({"tokens": tokens_digest(r["output_token_ids"])} if greedy and r.get("output_token_ids") else {})}
                for r in run["requests"]]
    keep = ("acceptance_rate", "mean_acceptance_length", "per_position_acceptance", "draft_coverage")
    return {"conditions": matching_facts(facts, PORTABLE), "recorded": recorded(environment),
            "metrics": {k: metrics.get(k) for k in keep}, "requests": requests, "counters": run["counters"]}


def condition_records(facts: dict, environment: dict, metrics: dict, run: dict, control_run: dict | None,
                      calls: dict | None = None) -> tuple[dict, dict | None]:
    """A finished run's portable record and timing record (None for a feature cell, whose subject
    is correctness): the one writer behind --specgate-update-baselines and `specgate baseline
    update`, so both record the same run the same way."""
    portable = portable_record(facts, environment, metrics, run)
    if facts.get("feature"):
        return portable, None
    return portable, timing_record(facts, environment, metrics, run, control_run, calls)


def unsupported_record(facts: dict, environment: dict, reason: str) -> dict:
    """A combination vLLM refused, kept like a figure: a change in support is a change."""
    return {"conditions": matching_facts(facts, PORTABLE), "recorded": recorded(environment), "metrics": {},
            "unsupported": reason}


def timing_record(facts: dict, environment: dict, metrics: dict, run: dict, control_run: dict | None,
                  calls: dict | None = None) -> dict:
    """Per-request latency, paired with the control's latency for the same prompt (None for a
    control); ``calls``: what one short request called (code_path.measure)."""
    keep = ("latency_mean_s", "latency_p50_s", "tokens_per_s", "speedup", "step_ms", "wall_s")
    return {"conditions": matching_facts(facts, TIMING), "recorded": recorded(environment),
            "metrics": {k: metrics.get(k) for k in keep}, "mode": run["mode"], "wall_s": run["wall_s"],
            "latency_s": [r["latency_s"] for r in run["requests"]],
            "output_tokens": [r["output_tokens"] for r in run["requests"]],
            **({"cpu_s": [r["cpu_s"] for r in run["requests"]],
                "queued_s": [r.get("queued_s") or 0.0 for r in run["requests"]]}
               if run["requests"] and all(r.get("cpu_s") is not None for r in run["requests"]) else {}),
            **_streaming(run), **({"code_path": calls} if calls else {}),
            "reference": _paired(run, "reference_latency_s"),
            "control": _paired(run) or (None if control_run is None else {
                "wall_s": control_run["wall_s"], "latency_s": [r["latency_s"] for r in control_run["requests"]],
                "output_tokens": [r["output_tokens"] for r in control_run["requests"]]})}


def _streaming(run: dict) -> dict:
    """Serving mode: per request, time to first token and mean inter-token latency."""
    reqs = run["requests"]
    if not reqs or any(r.get("ttft_s") is None for r in reqs):
        return {}
    return {"ttft_s": [r["ttft_s"] for r in reqs],
            "itl_s": [sum(r["itl_s"]) / len(r["itl_s"]) if r.get("itl_s") else None for r in reqs]}


def _paired(run: dict, key: str = "control_latency_s") -> dict | None:
    """The latencies timed beside each request (the control's, or the machine reference's), if any."""
    lats = [r.get(key) for r in run["requests"]]
    if not lats or any(x is None for x in lats):
        return None
    return {"wall_s": None, "latency_s": lats, "output_tokens": [r["output_tokens"] for r in run["requests"]]}


@dataclass
class BaselineFile:
    """One file of records of one kind (portable, or timing for one hardware tag)."""

    path: Path
    kind: str
    hardware: str | None
    records: dict[str, dict]

    @classmethod
    def load(cls, path: Path, kind: str, hardware: str | None = None) -> BaselineFile:
        """The file's records; an absent file has none. Corrupt or foreign files raise BaselineError."""
        if not path.exists():
            return cls(path, kind, hardware, {})
        doc = read_json(path, "baseline file", BaselineError)
        schema = doc.get("schema")
        if not isinstance(schema, int):
            raise BaselineError(f"{path}: not a specgate baseline file (no integer 'schema'); "
                                f"move it away or re-record with --specgate-update-baselines")
        if schema > SCHEMA:
            raise BaselineError(f"{path}: written by a newer specgate (schema {schema}; this one reads {SCHEMA}); "
                                f"upgrade specgate")
        if schema < SCHEMA:
            raise BaselineError(f"{path}: schema {schema} baselines (keyed on hardware and vLLM version); convert "
                                f"them with `specgate baseline migrate {path.parent}`")
        if doc.get("kind") != kind or not isinstance(doc.get("records"), dict):
            raise BaselineError(f"{path}: holds {doc.get('kind')!r} records, not {kind!r}, or has no 'records' "
                                f"table; restore it from version control")
        if kind == TIMING and doc.get("hardware") != hardware:
            raise BaselineError(f"{path}: holds timing records for hardware {doc.get('hardware')!r}, not "
                                f"{hardware!r}; rename the file to its hardware tag")
        for cid, rec in doc["records"].items():
            if not all(key in rec for key in ("conditions", "recorded", "metrics")):
                raise BaselineError(f"{path}: record {cid!r} is incomplete; restore the file from version control "
                                    f"or re-record it with --specgate-update-baselines")
        return cls(path, kind, hardware, doc["records"])

    def find(self, cid: str, facts: dict) -> tuple[dict | None, str]:
        """(record, "") when its conditions match; else (None, why not)."""
        rec = self.records.get(cid)
        where = self.path if self.path.exists() else f"{self.path} (absent)"
        if rec is None:
            return None, f"no {self.kind} baseline for {cid} in {where}; record one with --specgate-update-baselines"
        wanted = matching_facts(facts, self.kind)
        diffs = [f"{k}={rec['conditions'].get(k)!r} there, {wanted.get(k)!r} here"
                 for k in sorted(set(wanted) | set(rec["conditions"])) if rec["conditions"].get(k) != wanted.get(k)]
        if diffs:
            return None, (f"{self.kind} baseline for {cid} was measured under other conditions: {'; '.join(diffs[:3])}"
                          f"; re-record with --specgate-update-baselines if the change is intended")
        return rec, ""

    def find_timing(self, cid: str, facts: dict, elsewhere: list[str] = ()) -> tuple[dict | None, str]:
        """find() for a timing file, saying which hardware has records when this one has none."""
        rec, why = self.find(cid, facts)
        if rec is None and not self.records:
            why = (f"no timing records for this hardware ({self.hardware})"
                   + (f"; there are some for {', '.join(elsewhere)}" if elsewhere else "")
                   + "; record them here with --specgate-update-baselines")
        return rec, why

    def update(self, records: dict[str, dict]) -> None:
        merged = {**self.records, **records}
        doc = {"schema": SCHEMA, "kind": self.kind, **({"hardware": self.hardware} if self.kind == TIMING else {}),
               "records": merged}
        try:
            write_atomic(self.path, dumps(doc))
        except OSError as exc:
            raise BaselineError(f"cannot write {self.path}: {exc.strerror or exc}; the previous file is unchanged. "
                                f"Fix the folder's permissions or choose another with --specgate-baselines DIR "
                                f"(specgate baseline update --baselines DIR)") from None
        self.records = merged


@dataclass
class BaselineStore:
    """The baseline folder: the portable records and this hardware's timing records."""

    folder: Path
    hardware: str

    @property
    def portable_path(self) -> Path:
        return self.folder / "portable.json"

    @property
    def timing_path(self) -> Path:
        return self.folder / "timing" / f"{self.hardware}.json"

    def portable(self) -> BaselineFile:
        return BaselineFile.load(self.portable_path, PORTABLE)

    def timing(self) -> BaselineFile:
        return BaselineFile.load(self.timing_path, TIMING, self.hardware)

    def timing_hardware(self) -> list[str]:
        """Hardware tags that have timing records in this folder."""
        return sorted(p.stem for p in (self.folder / "timing").glob("*.json"))

    def save(self, portable: dict[str, dict], timing: dict[str, dict]) -> list[Path]:
        """Write both kinds; each file atomically. Returns the files written."""
        written = []
        for load, records in ((self.portable, portable), (self.timing, timing)):
            if records:
                target = load()
                target.update(records)
                written.append(target.path)
        return written
