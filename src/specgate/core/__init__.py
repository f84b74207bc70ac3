"""Records and formulas: what an engine produced (results), the metrics derived from it, the speedup model, vLLM counter names. Pure: no vLLM, no files, and nothing of specgate outside core."""
