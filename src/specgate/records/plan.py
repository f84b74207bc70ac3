"""A plan of GPU time: each condition's seconds from a timing record or matrix/cost's model, each
pairing on the smallest runner label with the GPUs it needs, and each label's pairings packed into
shards, longest first. `specgate plan` writes the plan; `--specgate-plan` reads it back, so that each
shard of a GPU workflow runs on a runner of its size.

A timing record's times are one round's (the median over its rounds): a condition's estimate is the
record's wall time, plus the control and reference timed beside each request when paired, scaled
by the prompts and new tokens configured now over the recorded ones and by the rounds configured now.

The plan document (``specgate plan --out plan.json``)::

    {"schema": 1, "kind": "plan", "pairings": {"path": P, "sha256": H}, "conditions": C, "shard_count": N,
     "shards": [{"index": I, "runs_on": [LABEL, ...], "gpus": G, "pairings": [NAME, ...],
                 "conditions": C, "seconds": S, "unknown": U, "sources": [...]}],
     "estimates": [{"pairing": NAME, "gpus": G, "shard": I, "conditions": C, "seconds": S, "size": ...}],
     "notes": [...], "matrix": {"include": [{"shard": "I/N", "runs_on": [...]}]}}

``seconds`` counts every condition once per shard (a control shared by two pairings of a shard runs
once) and ENGINE_BUILD_S per engine; ``unknown`` is how many conditions had no estimate (counted as
0 s). ``matrix`` is the GitHub Actions job matrix of the plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from specgate.matrix import cost
from specgate.matrix.conditions import Condition, Matrix
from specgate.records.baselines import TIMING, BaselineFile
from specgate.records.document import DocumentError, dumps, read_json, write_atomic

SCHEMA = 1
DEFAULT_RUNS_ON = ("self-hosted", "linux", "gpu")


class PlanError(DocumentError):
    """A plan cannot be made from these inputs, or cannot be used for this run; the message says how to fix it."""


@dataclass(frozen=True)
class Runner:
    """A runs-on label list and the GPUs its runners have (None: any number, the single default)."""

    gpus: int | None
    runs_on: tuple[str, ...]

    def __str__(self) -> str:
        gpus = "any number of GPUs" if self.gpus is None else f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}"
        return f"{gpus}: {json.dumps(list(self.runs_on))}"


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: unknown
    source: str  # "record HARDWARE DATE", "model", or "unknown"


def parse_runners(text: str) -> list[Runner]:
    """--runners: a JSON object of GPU count -> runs-on labels, or one label list for every pairing."""
    where = "--runners"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"{where} {text!r}: not JSON ({exc}); give e.g. '{{\"1\": [\"gpu\"], \"4\": [\"gpu-4x\"]}}'") from None
    if isinstance(value, list):
        return [Runner(None, _labels(value, where))]
    if not isinstance(value, dict) or not value:
        raise PlanError(f"{where} {text!r}: expected a JSON object of GPU count -> runs-on labels, e.g. "
                        f"'{{\"1\": [\"gpu\"], \"4\": [\"gpu-4x\"]}}', or one list of labels for every pairing")
    runners = []
    for key, labels in value.items():
        if not key.strip().isdigit() or int(key) < 1:
            raise PlanError(f"{where}: key {key!r} is not a GPU count (an integer >= 1)")
        runners.append(Runner(int(key), _labels(labels, f"{where} {key!r}")))
    return sorted(runners, key=lambda r: r.gpus)


def _labels(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) and x for x in value):
        raise PlanError(f"{where}: runs-on labels must be a non-empty list of strings, got {json.dumps(value)}")
    return tuple(value)


def timing_files(folder: Path, hardware: list[str]) -> list[BaselineFile]:
    """The timing records of these hardware tags, in the order given (the first with a record wins)."""
    files = []
    for tag in hardware:
        found = BaselineFile.load(folder / "timing" / f"{tag}.json", TIMING, tag)
        if not found.path.exists():
            there = sorted(p.stem for p in (folder / "timing").glob("*.json"))
            raise PlanError(f"--hardware {tag}: no {found.path}; timing records in {folder}: "
                            f"{', '.join(there) or 'none'}")
        files.append(found)
    return files


def from_record(c: Condition, rec: dict, hardware: str) -> Estimate:
    """A record's one-round time scaled to the workload configured now."""
    facts, p = rec["conditions"], c.pairing
    one_round = float(rec.get("wall_s") or sum(rec.get("latency_s") or []))
    for beside in ("control", "reference"):
        paired = rec.get(beside)
        if paired and paired.get("wall_s") is None:  # timed beside each request
            one_round += sum(paired.get("latency_s") or [])
    scale = (p.num_prompts / (facts.get("num_prompts") or p.num_prompts)
             * p.max_new_tokens / (facts.get("max_new_tokens") or p.max_new_tokens))
    date = str((rec.get("recorded") or {}).get("date") or "")[:10]
    return Estimate(p.rounds * one_round * scale, f"record {hardware} {date}".strip())


def estimate(c: Condition, records: list[BaselineFile], size: cost.Size, bandwidth: float) -> Estimate:
    for file in records:
        rec = file.records.get(c.id)
        if rec is not None and rec.get("wall_s") is not None:
            return from_record(c, rec, file.hardware)
    seconds = cost.seconds(c, size, bandwidth)
    return Estimate(seconds, "model" if seconds is not None else "unknown")


@dataclass
class Group:
    """Conditions that run together (one pairing, or one shard): each once, with its engines."""

    estimates: dict[str, Estimate]
    engines: set

    @property
    def seconds(self) -> float:
        return sum(e.seconds or 0.0 for e in self.estimates.values()) + cost.ENGINE_BUILD_S * len(self.engines)

    @property
    def unknown(self) -> int:
        return sum(e.seconds is None for e in self.estimates.values())

    def sources(self) -> list[str]:
        """"model (12)", "record TAG 2026-11-29..2026-11-30 (8)": where the estimates came from."""
        dates: dict[str, list[str]] = {}
        for e in self.estimates.values():
            kind, _, date = e.source.rpartition(" ") if e.source.startswith("record ") else (e.source, "", "")
            dates.setdefault(kind, []).append(date)
        return [f"{kind}{_span(found)} ({len(found)})" for kind, found in sorted(dates.items())]

    def add(self, other: Group) -> None:
        self.estimates.update(other.estimates)
        self.engines |= other.engines


def _span(dates: list[str]) -> str:
    found = sorted({d for d in dates if d})
    return "" if not found else f" {found[0]}" if len(found) == 1 else f" {found[0]}..{found[-1]}"


def make(matrix: Matrix, shards: int, runners: list[Runner], records: list[BaselineFile] = (),
         bandwidth: float = cost.BANDWIDTH) -> dict:
    """The plan document of a pairings file (see the module's docstring); PlanError when a pairing
    needs more GPUs than any runner has."""
    if shards < 1:
        raise PlanError(f"--shards {shards}: must be 1 or more")
    notes = []
    groups, sizes, label = {}, {}, {}
    for p in matrix.pairings:
        sizes[p.name] = cost.target_size(p)
        conditions = Matrix(matrix.source, (p,)).conditions()
        groups[p.name] = Group({c.id: estimate(c, records, sizes[p.name], bandwidth) for c in conditions},
                               {cost.engine(c) for c in conditions})
        need = cost.gpus(p)
        fits = [r for r in runners if r.gpus is None or r.gpus >= need]
        if not fits:
            raise PlanError(f"pairing {p.name!r} needs {need} GPUs (tensor_parallel_size x pipeline_parallel_size); "
                            f"the runner labels have {', '.join(str(r) for r in runners)}: add a label with "
                            f"{need} or more GPUs to --runners")
        label[p.name] = fits[0]
        if groups[p.name].unknown:
            notes.append(f"pairing {p.name!r}: {sizes[p.name]}: {groups[p.name].unknown} conditions not estimated "
                         f"(0 s); record its timing on a GPU (then --hardware TAG), or give the target as a local "
                         f"folder with its config.json or a hub id with its size in the name")
    used = [r for r in runners if any(label[p.name] == r for p in matrix.pairings)]
    pairings_of = {r: [p.name for p in matrix.pairings if label[p.name] == r] for r in used}
    if shards < len(used):
        notes.append(f"--shards {shards} raised to {len(used)}: one shard for each runner label in use")
    if shards > len(matrix.pairings):
        notes.append(f"--shards {shards} lowered to {len(matrix.pairings)}: a pairing never splits, and a shard "
                     f"without one would run nothing")
    count = min(max(shards, len(used)), len(matrix.pairings))
    per_label = {r: 1 for r in used}
    time_of = {r: sum(groups[name].seconds for name in pairings_of[r]) for r in used}
    for _ in range(count - len(used)):  # the rest to the label with the most time per shard
        open_ = [r for r in used if per_label[r] < len(pairings_of[r])]
        most = max(open_, key=lambda r: (time_of[r] / per_label[r], -used.index(r)))
        per_label[most] += 1
    plan_shards, where = [], {}
    for r in used:
        bins = [[] for _ in range(per_label[r])]
        loads = [0.0] * len(bins)
        order = sorted(pairings_of[r], key=lambda n: (-groups[n].seconds, pairings_of[r].index(n)))
        for name in order:  # longest first, onto the least loaded shard
            i = min(range(len(bins)), key=lambda b: (loads[b], b))
            bins[i].append(name)
            loads[i] += groups[name].seconds
        for names in bins:
            index = len(plan_shards)
            whole = Group({}, set())
            for name in names:
                whole.add(groups[name])
                where[name] = index
            plan_shards.append({"index": index, "runs_on": list(r.runs_on), "gpus": r.gpus,
                                "pairings": [p.name for p in matrix.pairings if p.name in names],
                                "conditions": len(whole.estimates), "seconds": round(whole.seconds, 1),
                                "unknown": whole.unknown, "sources": whole.sources()})
    return {
        "schema": SCHEMA, "kind": "plan",
        "pairings": {"path": str(matrix.source), "sha256": file_sha256(matrix.source)},
        "conditions": len(matrix.conditions()), "shard_count": count, "shards": plan_shards,
        "estimates": [{"pairing": p.name, "gpus": cost.gpus(p), "shard": where[p.name],
                       "conditions": len(groups[p.name].estimates), "seconds": round(groups[p.name].seconds, 1),
                       "unknown": groups[p.name].unknown, "size": str(sizes[p.name]),
                       "sources": groups[p.name].sources()} for p in matrix.pairings],
        "notes": notes,
        "matrix": {"include": [{"shard": f"{s['index']}/{count}", "runs_on": s["runs_on"]} for s in plan_shards]},
    }


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write(path: Path, plan: dict) -> None:
    try:
        write_atomic(path, dumps(plan))
    except OSError as exc:
        raise PlanError(f"cannot write {path}: {exc.strerror or exc}; choose another --out FILE") from None


def shard_pairings(path: Path, pairings_file: Path, shard: tuple[int, int]) -> tuple[str, ...]:
    """The pairings of shard I of N in the plan at ``path``, which must have been made for this
    pairings file (same content) and N shards."""
    plan = read_json(path, "plan file", PlanError)
    again = f"re-run `specgate plan {pairings_file} --shards {shard[1]} --out {path}`"
    if plan.get("kind") != "plan" or plan.get("schema") != SCHEMA or not isinstance(plan.get("shards"), list):
        raise PlanError(f"--specgate-plan {path}: not a specgate plan (schema {SCHEMA}); {again}")
    made_for = plan.get("pairings") or {}
    if made_for.get("sha256") != file_sha256(pairings_file):
        raise PlanError(f"--specgate-plan {path}: made for {made_for.get('path')} (sha256 "
                        f"{str(made_for.get('sha256'))[:12]}), not for this run's {pairings_file} (sha256 "
                        f"{file_sha256(pairings_file)[:12]}); {again}")
    if plan.get("shard_count") != shard[1] or len(plan["shards"]) != shard[1]:
        raise PlanError(f"--specgate-plan {path}: has {plan.get('shard_count')} shards, this run is "
                        f"--specgate-shard {shard[0]}/{shard[1]}; pass --specgate-shard I/{plan.get('shard_count')} "
                        f"or {again}")
    return tuple(plan["shards"][shard[0]]["pairings"])
