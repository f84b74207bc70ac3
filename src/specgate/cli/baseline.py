"""`specgate baseline update` (a saved run's records written as baselines, atomically) and
`specgate baseline migrate` (schema-1 files -> portable and timing records)."""

from __future__ import annotations

from pathlib import Path

from specgate.cli.common import RESULTS_HELP, UsageError
from specgate.records.baselines import BaselineStore
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


def migrate(args) -> int:
    from specgate.records.migrate import migrate as migrate_folder

    for line in migrate_folder(args.baselines, args.pairings):
        print(line)
    return 0
