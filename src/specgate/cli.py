"""The ``specgate`` command: check a pairings file, or show a saved run as a table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import config
from .metrics import RunMetrics
from .report import markdown_table, text_table


def _validate(args) -> int:
    matrix = config.load(args.pairings)
    conditions = matrix.conditions()
    print(f"{args.pairings}: {len(matrix.pairings)} pairings, {len(conditions)} conditions")
    for c in conditions:
        print(f"  {c.id}")
    return 0


def _table(args) -> int:
    try:
        doc = json.loads(Path(args.results).read_text())
        rows = [(cid, RunMetrics(**{**entry["metrics"],
                                    "per_position_acceptance": tuple(entry["metrics"]["per_position_acceptance"])}))
                for cid, entry in doc.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise config.ConfigError(f"{args.results}: not a specgate results file ({type(exc).__name__}: {exc}); "
                                 f"write one with pytest --specgate-results PATH") from None
    print(markdown_table(rows) if args.markdown else text_table(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="specgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a pairings file and list its conditions")
    v.add_argument("pairings", type=Path)
    v.set_defaults(func=_validate)
    t = sub.add_parser("table", help="print the metrics table of a --specgate-results file")
    t.add_argument("results", type=Path)
    t.add_argument("--markdown", action="store_true", help="Markdown instead of fixed-width text")
    t.set_defaults(func=_table)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except config.ConfigError as exc:
        print(f"specgate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
