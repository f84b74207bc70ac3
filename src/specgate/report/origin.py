"""The origin benchmark's published H100 figures (vLLM v0), as a reference drawn beside a run.

Parsed from data/origin_results_h100.md, the figures as published. A reference, never a gate:
other engine (v0), other hardware, GSM8K prompts at temperature 1. Not a results document (no
schema, environment, requests or verdicts: nothing was run): only the runs' facts and metrics,
which is what the charts' sweeps (sweep.series) read.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

COLUMNS = ("k", "acceptance_rate", "system_efficiency", "proposal_ms_per_token", "scoring_ms_per_step",
           "verification_ms_per_step", "latency_mean_s")
LABEL = "origin vLLM v0, H100"


@functools.cache
def origin_reference() -> dict:
    """The published figures as {"runs": {id: {"conditions", "metrics"}}}, for charts.write_charts."""
    text = resources.files("specgate").joinpath("data/origin_results_h100.md").read_text(encoding="utf-8")
    return parse(text)


def parse(text: str) -> dict:
    """{"runs": ...} with one run per (draft, prompt split, k), its metrics named as specgate's."""
    runs, draft, split = {}, None, None
    for line in text.splitlines():
        heading = re.match(r"^## Draft: ([^(]+?)\s*(?:\(.*\))?$", line)
        if heading:
            draft = heading[1].strip()
            continue
        part = re.match(r"^(easy|hard):\s*$", line)
        if part:
            split = part[1]
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if draft and split and len(cells) == len(COLUMNS) and cells[0].isdigit():
            values = dict(zip(COLUMNS, [int(cells[0])] + [float(c) for c in cells[1:]]))
            runs[f"origin-{draft}-gsm8k-{split}-k{values['k']}"] = {
                "conditions": {"pairing": f"{LABEL}: {draft}", "method": "draft_model", "mode": "sequential",
                               "prompt_set": f"gsm8k-{split}", "k": values["k"], "target": "Llama-3.1-70B-Instruct"},
                "metrics": values}
    if not runs:
        raise ValueError("no tables found in the origin figures")
    return {"runs": runs}
