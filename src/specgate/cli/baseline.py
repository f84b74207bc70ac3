"""`specgate baseline update` (a saved run's records written as baselines, atomically),
`specgate baseline list` / `show` (what is recorded, from which vLLM, hardware, date and commit) and
`specgate baseline migrate` (schema-1 files -> portable and timing records)."""

from __future__ import annotations

import difflib
from pathlib import Path

from specgate.cli.common import JSON_HELP, RESULTS_HELP, UsageError, print_json
from specgate.records.baselines import BaselineFile, BaselineStore
from specgate.records.document import load as load_results
from specgate.records.from_results import records


def add(sub) -> None:
    b = sub.add_parser("baseline", help="manage baseline records")
    bsub = b.add_subparsers(dest="baseline_command", required=True)
    u = bsub.add_parser("update", help="write the runs of a results file as baselines (atomically)")
    u.add_argument("results", type=Path, help=RESULTS_HELP)
    u.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    u.add_argument("--hardware-tag", help="override the results file's hardware tag")
    u.add_argument("--only", action="append", metavar="CONDITION", help="only this condition id (repeatable)")
    u.set_defaults(func=update)
    ls = bsub.add_parser("list", help="every record in the baseline folder: condition, kind, and where it came from")
    ls.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    ls.add_argument("--json", action="store_true", help=JSON_HELP)
    ls.set_defaults(func=list_records)
    sh = bsub.add_parser("show", help="one condition's records (portable and every hardware's timing), in full")
    sh.add_argument("condition", help="condition id, e.g. fixture-aligned-draft_model-k3")
    sh.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    sh.set_defaults(func=show)
    g = bsub.add_parser("migrate", help="convert schema-1 baseline files (one per hardware tag and vLLM version) "
                                        "into portable and timing records, without re-measuring")
    g.add_argument("baselines", type=Path, help="baseline folder holding the schema-1 files")
    g.add_argument("pairings", type=Path, help="the pairings file the records were measured from (for model paths)")
    g.set_defaults(func=migrate)


def update(args) -> int:
    doc = load_results(args.results)
    env = {**doc["environment"], **({"hardware": args.hardware_tag} if args.hardware_tag else {})}
    chosen = {cid: e for cid, e in doc["runs"].items() if not args.only or cid in args.only}
    missing = set(args.only or ()) - set(chosen)
    if missing:
        raise UsageError(f"{args.results}: no runs {sorted(missing)}; it has {', '.join(doc['runs'])}")
    portable, timing = records(doc, env)
    written = BaselineStore(args.baselines, env["hardware"]).save(
        {cid: portable[cid] for cid in chosen}, {cid: timing[cid] for cid in chosen if cid in timing})
    print(f"{len(chosen)} baseline records written to {' and '.join(map(str, written))}")
    return 0


def _files(folder: Path) -> list[BaselineFile]:
    """The folder's portable file and every hardware's timing file (BaselineError for a broken one)."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such baseline folder; record one with pytest --specgate-update-baselines "
                         f"or give --baselines DIR")
    store = BaselineStore(folder, "")
    return [store.portable()] + [BaselineStore(folder, hw).timing() for hw in store.timing_hardware()]


def _source(record: dict) -> str:
    r = record.get("recorded") or {}
    return (f"vLLM {r.get('vllm', '?')}, torch {r.get('torch', '?')}, {r.get('hardware', '?')}, "
            f"{str(r.get('date') or '?')[:10]}, commit {str(r.get('commit') or '?')[:10]}")


def list_records(args) -> int:
    files = _files(args.baselines)
    rows = [{"condition": cid, "kind": f.kind, "hardware": f.hardware, "file": str(f.path),
             "recorded": rec.get("recorded") or {}} for f in files for cid, rec in f.records.items()]
    if args.json:
        print_json({"baselines": str(args.baselines), "records": rows})
        return 0
    for f in files:
        print(f"{f.path}: {len(f.records)} {f.kind} records" + (f" for {f.hardware}" if f.hardware else ""))
        by_source: dict[str, list[str]] = {}
        for cid, rec in f.records.items():
            by_source.setdefault(_source(rec), []).append(cid)
        for source, cids in by_source.items():
            print(f"  from {source}: {len(cids)}: {', '.join(cids[:4])}{', ...' if len(cids) > 4 else ''}")
    return 0


def show(args) -> int:
    files = _files(args.baselines)
    found = {f"{f.kind}" + (f" {f.hardware}" if f.hardware else ""): f.records[args.condition]
             for f in files if args.condition in f.records}
    if not found:
        known = sorted({cid for f in files for cid in f.records})
        close = difflib.get_close_matches(args.condition, known, n=1, cutoff=0.6)
        raise UsageError(f"no records for {args.condition!r} in {args.baselines}"
                         + (f"; did you mean {close[0]!r}?" if close else f" ({len(known)} conditions recorded: "
                            f"specgate baseline list)"))
    print_json(found)
    return 0


def migrate(args) -> int:
    from specgate.records.migrate import migrate as migrate_folder

    for line in migrate_folder(args.baselines, args.pairings):
        print(line)
    return 0
