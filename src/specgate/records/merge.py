"""Shards -> one run: the results documents of a pairings file split with --specgate-shard,
merged into the document one unsharded run would have written (pure)."""

from __future__ import annotations

MUST_AGREE = ("hardware", "vllm", "torch")


class MergeError(ValueError):
    pass


def merge(docs: list[tuple[str, dict]]) -> dict:
    """``docs``: (name, results document) per shard. Runs are united in matrix order; a condition
    in several shards (a shared control) must have been run under the same conditions, and the
    first shard's run is kept."""
    if not docs:
        raise MergeError("nothing to merge: give two or more results files")
    check_shards(docs)
    first_name, first = docs[0]
    runs: dict[str, dict] = {}
    source: dict[str, str] = {}
    for name, doc in docs:
        for key in MUST_AGREE:
            if doc["environment"].get(key) != first["environment"].get(key):
                raise MergeError(f"{name} was run with {key} {doc['environment'].get(key)!r}, {first_name} with "
                                 f"{first['environment'].get(key)!r}: shards of one run must share hardware and versions")
        for cid, entry in doc["runs"].items():
            if cid in runs:
                if runs[cid]["conditions"] != entry["conditions"]:
                    raise MergeError(f"{cid} is in {source[cid]} and {name} under different conditions; "
                                     f"were they run from the same pairings file?")
                continue
            runs[cid], source[cid] = entry, name
    if all(e.get("order") is not None for e in runs.values()):
        runs = dict(sorted(runs.items(), key=lambda kv: kv[1]["order"]))
    merged = {**first, "runs": runs}
    merged.pop("shard", None)  # the merged document is the whole run
    return merged


def check_shards(docs: list[tuple[str, dict]]) -> None:
    """The shards of a --specgate-shard run, each once and none missing (files written before
    results carried their shard are not checked). The same file given twice is refused either way:
    its runs would count once but read as two shards."""
    names = [name for name, _ in docs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise MergeError(f"{', '.join(repeated)} is given more than once: give each shard's results file once")
    shards = {name: doc.get("shard") for name, doc in docs}
    given = {name: s for name, s in shards.items() if s}
    if not given:
        return
    if len(given) < len(docs):
        raise MergeError(f"{', '.join(n for n, s in shards.items() if not s)} ran unsharded, "
                         f"{', '.join(given)} with --specgate-shard: merge the shards of one run")
    counts = {s["count"] for s in given.values()}
    if len(counts) > 1:
        raise MergeError(f"the shards were split {' and '.join(map(str, sorted(counts)))} ways: merge the shards "
                         f"of one run")
    count, seen = counts.pop(), {}
    for name, s in given.items():
        if s["index"] in seen:
            raise MergeError(f"shard {s['index']}/{count} is given twice ({seen[s['index']]} and {name})")
        seen[s["index"]] = name
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise MergeError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: give all {count} shards "
                         f"of the run (its results files)")
