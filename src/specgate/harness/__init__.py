"""One pytest session: its options, read once (options), the session state (session), what
a test is given before it runs: preflight, prompts and engines (supply), the benchmark fixture
(fixture), each finished run judged or staged (judging), every run kept for the results
document (ledger), and why each failed test failed, for the run's exit status (failures)."""
