"""Summarise the timing checks of saved runs: one row per run, the worst change of each timing
check and whether any failed. For measuring false alarms and detection of the timing verdict:

    .venv/bin/python scripts/timing_verdicts.py runs/*.json
"""

import json
import sys

TIMING = ("latency_vs_control", "latency_vs_reference", "latency", "blocked", "code_path")

print("| run | conditions timed | latency_vs_control: min..max change | latency_vs_reference | blocked (points) "
      "| code_path failed | timing failures |")
print("|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    runs = json.load(open(path))["runs"]
    changes: dict[str, list[float]] = {m: [] for m in TIMING}
    failed = []
    for cid, entry in runs.items():
        for check in (entry.get("verdict") or {}).get("checks", []):
            if check["metric"] in TIMING:
                changes[check["metric"]].append(check["change"])
                if not check["passed"]:
                    failed.append(f"{cid} {check['metric']} {check['change']:+.1%}")
    points = lambda xs: f"{min(xs) * 100:+.1f}..{max(xs) * 100:+.1f}" if xs else "-"
    span = lambda xs: f"{min(xs):+.1%}..{max(xs):+.1%}" if xs else "-"
    timed = len(changes["latency_vs_control"]) + len(changes["latency_vs_reference"])
    print(f"| {path} | {timed} | {span(changes['latency_vs_control'])} | {span(changes['latency_vs_reference'])} | "
          f"{points(changes['blocked'])} | "
          f"{sum(1 for f in failed if ' code_path ' in f)} of {len(changes['code_path'])} | "
          f"{'; '.join(failed) or 'none'} |")
