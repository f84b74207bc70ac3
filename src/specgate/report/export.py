"""Results -> the JSON that github-action-benchmark (and similar trackers) read."""

from __future__ import annotations

BIGGER = {"acceptance_rate": "ratio", "mean_acceptance_length": "tokens/step", "system_efficiency": "ratio",
          "tokens_per_s": "tokens/s", "speedup": "x"}
SMALLER = {"latency_mean_s": "s", "latency_p90_s": "s", "time_per_output_token_ms": "ms"}


def github_benchmark(results: dict) -> dict[str, list[dict]]:
    """Two files: customBiggerIsBetter and customSmallerIsBetter entries, one per condition and metric."""
    out = {"bigger_is_better.json": [], "smaller_is_better.json": []}
    for cid, entry in results["runs"].items():
        m = entry["metrics"]
        intervals = {c["metric"]: c["interval"] for c in (entry.get("verdict") or {}).get("checks", [])
                     if c.get("interval")}
        for file, metrics in (("bigger_is_better.json", BIGGER), ("smaller_is_better.json", SMALLER)):
            for name, unit in metrics.items():
                if m.get(name) is None:
                    continue
                row = {"name": f"{cid} {name}", "unit": unit, "value": m[name]}
                if name in intervals:
                    # The verdict's bootstrap interval of the relative change, as +- in the metric's unit.
                    low, high = intervals[name]
                    row["range"] = f"± {abs(m[name]) * (high - low) / 2:.4g}"
                out[file].append(row)
    return out
