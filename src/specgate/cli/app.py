"""The `specgate` command: check and plan pairings files, show and compare saved runs, manage baselines.
Each subcommand is one module of this folder with ``add(subparsers)`` and the function it runs."""

from __future__ import annotations

import argparse
import sys

from specgate import __version__
from specgate.cli import ab, baseline, common, compare, merge, plan, report, table, validate
from specgate.core.outcomes import HELP, Outcome
from specgate.matrix.errors import ConfigError
from specgate.records.document import DocumentError
from specgate.records.merge import MergeError

SUBCOMMANDS = (validate, plan, table, report, merge, baseline, compare, ab)

EXIT_CODES = HELP + """

The benchmarks themselves run under pytest: `make bench` (docs: README.md)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specgate", description=__doc__.split("\n")[0], epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"specgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = build_parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if rest and args.command != "ab":
        print("specgate: error: only 'specgate ab' takes arguments after --", file=sys.stderr)
        return Outcome.USAGE
    if rest:
        args.pytest_args = rest
    try:
        return args.func(args)
    except (ConfigError, DocumentError, MergeError, common.UsageError) as exc:
        print(f"specgate: error: {exc}", file=sys.stderr)
        return Outcome.USAGE


if __name__ == "__main__":
    sys.exit(main())
