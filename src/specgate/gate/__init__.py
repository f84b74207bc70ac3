"""A run and its records -> a verdict (pure): one condition against its control and records
(judge), the checks and their statistics (verdict), the code path against its record
(code_path), the in-run checks (correctness, sanity, and a feature cell's own: feature_checks,
with where requests end in boundaries), and a saved run judged against saved records (saved_runs)."""
