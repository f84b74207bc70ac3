"""`specgate merge`: the results files of --specgate-shard runs -> one run's results, report and
step summary; exit 1 on any regression."""

from __future__ import annotations

import sys
from pathlib import Path

from specgate.cli.common import (ALLOW_MISSING_HELP, JSON_HELP, REFERENCE_HELP, errors_of, exit_status, judged_json,
                                 print_json, reference)
from specgate.records.document import load as load_results
from specgate.records.merge import merge
from specgate.report.publish import append_step_summary, write_report


def add(sub) -> None:
    m = sub.add_parser("merge", help="merge the results files of --specgate-shard runs into one run's report")
    m.add_argument("results", type=Path, nargs="+", help="the shards' results files (--specgate-results)")
    m.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    m.add_argument("--reference", choices=["origin-h100"], help=REFERENCE_HELP)
    m.add_argument("--allow-missing", action="store_true", help=ALLOW_MISSING_HELP)
    m.add_argument("--json", action="store_true", help=JSON_HELP)
    m.set_defaults(func=run)


def run(args) -> int:
    merged = merge([(str(path), load_results(path)) for path in args.results])
    summary, _ = write_report(merged, args.out, reference=reference(args))
    append_step_summary(summary)
    if not args.json:
        print(summary)
    print(f"specgate: {len(args.results)} shards, {len(merged['runs'])} runs merged into {args.out / 'results.json'}",
          file=sys.stderr if args.json else sys.stdout)
    statuses = {cid: (e.get("verdict") or {}).get("status") for cid, e in merged["runs"].items()}
    status = exit_status(statuses, args.allow_missing, errors=errors_of(merged))
    if args.json:
        print_json({**judged_json({cid: e.get("verdict") for cid, e in merged["runs"].items()}, status),
                    "results": str(args.out / "results.json")})
    return status
