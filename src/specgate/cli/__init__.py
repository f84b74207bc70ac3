"""The `specgate` command, one module per subcommand (asv's layout): main builds the parser from them."""
