"""Baseline files: load, match and save records (atomically; a file is never half-written).

One file per hardware tag, ``baselines/<tag>.json``::

    {"schema": 1, "hardware": TAG, "records": {CONDITION_ID: RECORD}}

A record is what a results file holds for one condition (its ``conditions``, ``metrics`` and
per-request ``run``) plus the ``environment`` it was measured in. A run is only compared with a
record of the same conditions on the same hardware with the same vLLM and torch versions.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Condition

SCHEMA = 1
# Environment facts that must match before timings or acceptance are compared.
MUST_MATCH = ("vllm", "torch")


class BaselineError(ValueError):
    """A baseline or results file cannot be used; the message says which file, why, and what to do."""


def condition_facts(c: Condition) -> dict[str, Any]:
    """Everything about a condition that changes its numbers, as plain JSON values."""
    p = c.pairing  # for a control, the control pairing: no draft, no speculative keys
    return {
        "pairing": p.name, "method": c.method, "k": c.k, "mode": c.mode,
        **({"concurrency": c.concurrency} if c.mode == "serving" else {}), "target": p.target, "draft": p.draft,
        "prompt_set": p.prompt_set, **({"prompt_options": dict(sorted(p.prompt_options.items()))}
                                       if p.prompt_options else {}), "num_prompts": p.num_prompts, "max_new_tokens": p.max_new_tokens,
        "temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k, "seed": p.seed,
        "ignore_eos": p.ignore_eos, "instruct": p.instruct, "dtype": p.dtype, "rounds": p.rounds,
        "engine": dict(sorted(p.engine.items())), "speculative": dict(sorted(p.speculative.items())),
    }


def portable_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Local model paths differ between checkouts; compare them by folder name only."""
    out = dict(facts)
    for key in ("target", "draft"):
        if isinstance(out.get(key), str) and out[key].startswith("/"):
            out[key] = "local:" + Path(out[key]).name
    return out


def record(facts: dict, environment: dict, metrics: dict, run: dict) -> dict:
    run = {**run, "requests": [{k: v for k, v in r.items() if k != "output_token_ids"} for r in run["requests"]]}
    env = {k: environment.get(k) for k in ("vllm", "torch", "date", "commit")}
    return {"conditions": portable_facts(facts), "environment": env, "metrics": metrics, "run": run}


@dataclass
class BaselineFile:
    path: Path
    hardware: str
    records: dict[str, dict]

    @classmethod
    def load(cls, path: Path, hardware: str) -> BaselineFile:
        """The file's records; an absent file has none. Corrupt or foreign files raise BaselineError."""
        if not path.exists():
            return cls(path, hardware, {})
        doc = read_json(path, "baseline file")
        schema = doc.get("schema")
        if not isinstance(schema, int):
            raise BaselineError(f"{path}: not a specgate baseline file (no integer 'schema'); "
                                f"move it away or re-record with --update-baselines")
        if schema > SCHEMA:
            raise BaselineError(f"{path}: written by a newer specgate (schema {schema}; this one reads {SCHEMA}); "
                                f"upgrade specgate")
        if doc.get("hardware") != hardware or not isinstance(doc.get("records"), dict):
            raise BaselineError(f"{path}: holds records for hardware {doc.get('hardware')!r}, not {hardware!r}, "
                                f"or has no 'records' table; rename the file to its hardware tag")
        for cid, rec in doc["records"].items():
            if not all(key in rec for key in ("conditions", "environment", "metrics", "run")):
                raise BaselineError(f"{path}: record {cid!r} is incomplete; restore the file from version control "
                                    f"or re-record it with --update-baselines")
        return cls(path, hardware, doc["records"])

    def find(self, cid: str, facts: dict, environment: dict) -> tuple[dict | None, str]:
        """(record, "") when comparable; else (None, why not)."""
        rec = self.records.get(cid)
        if rec is None:
            where = self.path if self.path.exists() else f"{self.path} (absent)"
            return None, f"no baseline for {cid} in {where}; record one with --update-baselines"
        wanted = portable_facts(facts)
        diffs = [f"{k}={rec['conditions'].get(k)!r} there, {wanted.get(k)!r} here"
                 for k in sorted(set(wanted) | set(rec["conditions"])) if rec["conditions"].get(k) != wanted.get(k)]
        if diffs:
            return None, f"baseline for {cid} was measured under other conditions: {'; '.join(diffs[:3])}"
        for key in MUST_MATCH:
            if rec["environment"].get(key) != environment.get(key):
                return None, (f"baseline for {cid} was recorded with {key} {rec['environment'].get(key)}, this run "
                              f"uses {environment.get(key)}; re-record with --update-baselines to compare")
        return rec, ""

    def update(self, records: dict[str, dict]) -> None:
        merged = {**self.records, **records}
        try:
            write_atomic(self.path, dumps({"schema": SCHEMA, "hardware": self.hardware, "records": merged}))
        except OSError as exc:
            raise BaselineError(f"cannot write {self.path}: {exc.strerror or exc}; the previous file is unchanged. "
                                f"Fix the folder's permissions or choose another with --specgate-baselines DIR "
                                f"(specgate baseline update --baselines DIR)") from None
        self.records = merged


def baseline_path(directory: Path, hardware: str) -> Path:
    return directory / f"{hardware}.json"


def read_json(path: Path, what: str) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: {what} is not valid JSON ({exc}); restore it from version control "
                            f"(git checkout -- {path}) or re-record it") from None
    if not isinstance(doc, dict):
        raise BaselineError(f"{path}: {what} must hold a JSON object")
    return doc


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: readers see the old
    file or the new one, never a mix, even if the writer is killed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the old file's mode, or the umask's default.
        if path.exists():
            mode = path.stat().st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def dumps(obj: Any, width: int = 160) -> str:
    """Stable JSON (sorted keys) with short containers on one line: readable, and small diffs."""
    def render(value: Any, indent: int) -> str:
        flat = json.dumps(value, sort_keys=True)
        if not isinstance(value, (dict, list)) or len(flat) + indent <= width:
            return flat
        pad, inner = " " * indent, " " * (indent + 1)
        if isinstance(value, dict):
            items = [f"{inner}{json.dumps(k)}: {render(v, indent + 1)}" for k, v in sorted(value.items())]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        return "[\n" + ",\n".join(f"{inner}{render(v, indent + 1)}" for v in value) + f"\n{pad}]"

    return render(obj, 0) + "\n"
