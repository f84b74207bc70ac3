"""A condition's run, its control and its baseline records -> one verdict (pure).

What each part is judged against (docs/baselines.md):
- portable record (any machine, any vLLM): acceptance two-sided, drafting coverage, and at
  temperature 0 every request's tokens;
- timing record (same hardware tag only): a speculative condition's latency relative to the
  control measured in the same run; a control's own latency, with a wide tolerance;
- in-run problems (correctness.py, sanity.py) fail the verdict whatever the records say.
Versions never stop a comparison; every note names them.
"""

from __future__ import annotations

import math

import numpy as np

from . import verdict as v
from .results import RunResult, SpecCounters


def _counters(d: dict | None) -> SpecCounters | None:
    return None if d is None else SpecCounters(d["drafts"], d["draft_tokens"], d["accepted"],
                                               tuple(d["accepted_per_pos"]))


def judge_portable(rec: dict, run: RunResult, environment: dict, tolerances: dict, prompt_ids: list[str],
                   rng: np.random.Generator, alpha: float = v.ALPHA) -> list[v.Check]:
    reqs = rec.get("requests") or []
    if len(reqs) != len(run.requests):
        return [v.Check("requests", False, len(reqs), len(run.requests), 0.0, None, 0.0,
                        f"portable baseline has {len(reqs)} requests, this run {len(run.requests)}")]
    checks: list[v.Check] = []
    base_specs = [_counters(r.get("spec")) for r in reqs]
    # A request vLLM reports no counts for drafted nothing: it counts as zero, not as a reason to skip.
    new_specs = [r.spec or SpecCounters() for r in run.requests]
    if all(s is not None for s in base_specs):
        checks += v.acceptance_checks(base_specs, new_specs, [r["output_tokens"] for r in reqs],
                                      [r.output_tokens for r in run.requests], tolerances["acceptance_rate"], alpha,
                                      rng, exact=rec["conditions"].get("temperature") == 0.0)
    if any("tokens" in r for r in reqs):
        from .fingerprint import tokens_digest

        other_hw = rec["recorded"].get("hardware") != environment.get("hardware")
        allowed = math.floor(tolerances["cross_hardware_tokens"] * len(reqs)) if other_hw else 0
        checks.append(v.token_check([r.get("tokens") for r in reqs],
                                    [tokens_digest(r.output_token_ids) for r in run.requests], allowed, prompt_ids))
    return checks


def judge_timing(rec: dict, run: RunResult, control: RunResult | None, tolerances: dict,
                 rng: np.random.Generator, alpha: float = v.ALPHA) -> list[v.Check]:
    lat_n = np.array([r.latency_s or np.nan for r in run.requests], float)
    lat_b = np.array([x or np.nan for x in rec.get("latency_s") or []], float)
    if len(lat_b) != len(lat_n) or not (np.isfinite(lat_b).all() and np.isfinite(lat_n).all()):
        return []  # a mode without per-request latency: tokens/s below
    reference = [r.reference_latency_s for r in run.requests]
    if control is None and rec.get("reference") and all(reference) and len(rec["reference"]["latency_s"]) == len(lat_n):
        # Measured on the shared 2-core machine: this ratio moved -25%..+7% between unchanged runs,
        # so it has the control's wide tolerance (docs/baselines.md), not latency's. The control's
        # absolute latency is not judged beside it: a one-core load multiplied it by 4.5.
        ref_b = np.array(rec["reference"]["latency_s"], float)
        return [v.paired_ratio_check((lat_b, ref_b), (lat_n, np.array(reference, float)),
                                     tolerances["control_latency"], alpha, rng, "latency_vs_reference",
                                     "vLLM / transformers latency per prompt")]
    checks = []
    if rec.get("control") is None or control is None:
        checks.append(v.latency_check(lat_b, lat_n, tolerances["control_latency"], alpha, rng))
    else:
        ctl_b = np.array([x or np.nan for x in rec["control"]["latency_s"]], float)
        paired = all(r.control_latency_s for r in run.requests)
        ctl_n = np.array([(r.control_latency_s if paired else c.latency_s) or np.nan
                          for r, c in zip(run.requests, control.requests)], float)
        if len(ctl_b) == len(ctl_n) == len(lat_n) and np.isfinite(ctl_b).all() and np.isfinite(ctl_n).all():
            checks.append(v.paired_ratio_check((lat_b, ctl_b), (lat_n, ctl_n), tolerances["latency"], alpha, rng))
    return checks


def judge_condition(run: RunResult, control: RunResult | None, environment: dict, tolerances: dict | None,
                    portable: tuple[dict | None, str], timing: tuple[dict | None, str], prompt_ids: list[str],
                    problems: list[str] = (), seed: int = 0) -> v.Verdict:
    """``portable`` and ``timing``: (record, why there is none). ``control`` is None for a control."""
    tol = {**v.DEFAULT_TOLERANCES, **(tolerances or {})}
    rng = np.random.default_rng(seed)
    checks, notes = [], []
    (prec, pwhy), (trec, twhy) = portable, timing
    if prec is not None:
        checks += judge_portable(prec, run, environment, tol, prompt_ids, rng)
        notes.append(f"acceptance/tokens judged against the portable record from {prec['recorded'].get('hardware')} "
                     f"({v.versions(prec['recorded'], environment)})")
    else:
        notes.append(f"acceptance/tokens not judged: {pwhy}")
    if trec is not None:
        judged = judge_timing(trec, run, control, tol, rng)
        checks += judged
        notes.append(f"timing judged against {environment.get('hardware')} ({v.versions(trec['recorded'], environment)})"
                     if judged else "timing not judged: this mode has no per-request latency")
    else:
        notes.append(f"timing not judged: {twhy}")
    prefix = ""
    if prec is not None and prec["recorded"].get("vllm") != environment.get("vllm"):
        prefix = f"vLLM {prec['recorded'].get('vllm')} -> {environment.get('vllm')}: "
    return v.combine(checks, list(problems), notes, prefix)
