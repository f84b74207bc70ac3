"""`specgate report`: the charts (PNG) and Markdown summary of a saved run."""

from __future__ import annotations

from pathlib import Path

from specgate.cli.common import REFERENCE_HELP, RESULTS_HELP, reference
from specgate.records.document import load as load_results
from specgate.report.publish import write_report


def add(sub) -> None:
    r = sub.add_parser("report", help="charts (PNG) and a Markdown summary of a --specgate-results file")
    r.add_argument("results", type=Path, help=RESULTS_HELP)
    r.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    r.add_argument("--reference", choices=["origin-h100"], help=REFERENCE_HELP)
    r.set_defaults(func=run)


def run(args) -> int:
    doc = load_results(args.results)
    summary, written = write_report(doc, args.out, with_results=False, reference=reference(args))
    print(summary)
    print(f"specgate: {len(written)} files written to {args.out}: {', '.join(p.name for p in written)}")
    return 0
