"""A run and its records -> a verdict (pure): the checks and their statistics (verdict), one
condition against its control and records (condition), the code path against its record
(code_path), the in-run checks (correctness, sanity), and a saved run judged against saved
records (saved_runs)."""
