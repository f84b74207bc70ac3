"""The `specgate` command, one module per subcommand (asv's layout): validate, plan, table, report,
merge, baseline, compare and ab, each with ``add(subparsers)`` and what it runs; app builds the
parser from them and runs one, common holds their exit status and errors."""


def main(argv: list[str] | None = None) -> int:
    """The console script `specgate` (entry point specgate.cli:main): app.main, imported only when
    run, so that importing a subcommand's module never imports the whole command."""
    from specgate.cli.app import main as run

    return run(argv)
