"""`specgate table`: the metrics table of a saved run, as text or Markdown."""

from __future__ import annotations

from pathlib import Path

from specgate.cli.common import RESULTS_HELP
from specgate.records.document import load as load_results
from specgate.report.tables import markdown_table, stage_table, text_table


def add(sub) -> None:
    t = sub.add_parser("table", help="print the metrics table of a --specgate-results file")
    t.add_argument("results", type=Path, help=RESULTS_HELP)
    t.add_argument("--markdown", action="store_true", help="Markdown instead of fixed-width text")
    t.set_defaults(func=run)


def run(args) -> int:
    doc = load_results(args.results)
    rows = [(cid, entry["metrics"]) for cid, entry in doc["runs"].items()]
    print(markdown_table(rows) if args.markdown else text_table(rows))
    stages = stage_table(rows, markdown=args.markdown)
    if stages:
        print("\n" + stages)
    return 0
