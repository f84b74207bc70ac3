"""The `specgate` command, one module per subcommand (asv's layout): validate, table, report,
merge, baseline, compare and ab, each with ``add(subparsers)`` and what it runs; main builds the
parser from them, common holds their exit status and errors."""
