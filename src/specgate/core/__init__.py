"""Records and formulas: what an engine produced (results), the metrics derived from it (metrics),
the speedup model (theory), vLLM's counter names and their sums in-process and from a server's
/metrics (counters, prometheus), every tolerance with its default (tolerances), and the exit
status of each outcome class (outcomes). Pure: no vLLM, no files, and nothing of specgate
outside core."""
