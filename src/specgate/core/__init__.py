"""Records and formulas: what an engine produced (results), the metrics derived from it (metrics),
the speedup model (theory), vLLM's counter names and their sums in-process and from a server's
/metrics (counters, prometheus), and every tolerance with its default (tolerances). Pure: no
vLLM, no files, and nothing of specgate outside core."""
