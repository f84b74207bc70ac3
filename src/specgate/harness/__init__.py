"""One pytest session: its options (read once), the session state, the benchmark fixture, each run judged (judging) and every run kept for the results document (ledger)."""
