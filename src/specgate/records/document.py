"""specgate's JSON files: the results document (schema, build, load and validate, write) and
the helpers every file format shares (read with one clear error, atomic write, stable layout).

A results document (``--specgate-results``, reports/results.json)::

    {"schema": 2, "environment": {...}, "runs": {CONDITION_ID: ENTRY}}

ENTRY: the condition's facts, tolerances, control id, matrix position, metrics, the run per
request, and the verdict with its checks. `specgate compare`, `merge`, `report`, `baseline
update` and the reports read it; the plugin writes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = 2


class DocumentError(ValueError):
    """A results or baseline file cannot be used; the message says which file, why, and what to do."""


def entry(facts: dict, tolerances: dict, control: str | None, order: int | None, metrics: dict,
          run: dict | None, verdict=None, unsupported: str | None = None, code_path: dict | None = None) -> dict:
    """One condition's entry; ``verdict`` is a verdict.Verdict (or None while unjudged);
    ``code_path``: what one short request called (engines/code_path.measure), when measured."""
    return {"conditions": facts, "tolerances": tolerances, "control": control, "order": order,
            "metrics": metrics, "run": run, **({"unsupported": unsupported} if unsupported is not None else {}),
            **({"code_path": code_path} if code_path else {}),
            "verdict": None if verdict is None else verdict_dict(verdict)}


def verdict_dict(verdict) -> dict:
    """A verdict.Verdict as the plain values results files (and `--json` outputs) hold."""
    return {"status": verdict.status, "reason": verdict.reason, "notes": list(verdict.notes),
            "sources": [dict(s) for s in verdict.sources],
            "checks": [{"metric": x.metric, "passed": x.passed, "change": x.change, "interval": x.interval,
                        "tolerance": x.tolerance, "one_sided": x.one_sided, "confidence": x.confidence}
                       for x in verdict.checks]}


def build(environment: dict, runs: dict[str, dict], shard: tuple[int, int] | None = None) -> dict:
    """``shard``: (index, count) of a --specgate-shard run, so that merge sees a missing or repeated shard."""
    return {"schema": SCHEMA, "environment": environment, "runs": runs,
            **({"shard": {"index": shard[0], "count": shard[1]}} if shard else {})}


def load(path: Path) -> dict:
    """A results document, validated: one DocumentError naming the file and how to get a good one."""
    doc = read_json(path, "results file")
    runs = doc.get("runs")
    if doc.get("schema") != SCHEMA or not isinstance(runs, dict) or "environment" not in doc or not all(
            isinstance(e, dict) and {"conditions", "metrics", "run"} <= set(e) for e in runs.values()):
        raise DocumentError(f"{path}: not a specgate results file (schema {SCHEMA} with 'environment' and 'runs'); "
                            f"write one with pytest --specgate-results PATH")
    return doc


def write(path: Path, doc: dict) -> None:
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def read_json(path: Path, what: str, error: type[DocumentError] = DocumentError) -> dict:
    """The JSON object in ``path``; ``error`` (a DocumentError) says what is wrong and how to fix it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    except ValueError as exc:
        raise error(f"{path}: {what} is not valid JSON ({exc}); restore it from version control "
                            f"(git checkout -- {path}) or re-record it") from None
    if not isinstance(doc, dict):
        raise error(f"{path}: {what} must hold a JSON object")
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
