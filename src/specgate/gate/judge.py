"""A condition's run, its control and its baseline records -> one verdict (pure).

What each part is judged against (docs/baselines.md):
- portable record (any machine, any vLLM): acceptance two-sided, drafting coverage, and at
  temperature 0 every request's tokens;
- timing record (same hardware tag only): a speculative condition's latency relative to the
  control measured in the same run; a control's own latency, with a wide tolerance;
- in-run problems (correctness.py, sanity.py, feature_checks.py) fail the verdict whatever the records say.
Versions never stop a comparison; every note names them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from specgate.core.results import RunResult, SpecCounters
from specgate.core.tolerances import with_defaults
from specgate.gate import code_path
from specgate.gate import verdict as v


def judge_portable(rec: dict, run: RunResult, environment: dict, tolerances: dict, prompt_ids: list[str],
                   rng: np.random.Generator, alpha: float = v.ALPHA) -> list[v.Check]:
    if "unsupported" in rec:
        return [v.Check("supported", False, 0.0, 1.0, math.inf, None, 0.0,
                        f"vLLM {rec['recorded'].get('vllm')} refused this combination when it was recorded "
                        f"({rec['unsupported']}); it runs now. {v.RERECORD}")]
    reqs = rec.get("requests") or []
    if len(reqs) != len(run.requests):
        return [v.Check("requests", False, len(reqs), len(run.requests), 0.0, None, 0.0,
                        f"portable baseline has {len(reqs)} requests, this run {len(run.requests)}")]
    checks: list[v.Check] = []
    base_specs = [SpecCounters.from_dict(r.get("spec")) for r in reqs]
    # A request vLLM reports no counts for drafted nothing: it counts as zero, not as a reason to skip.
    new_specs = [r.spec or SpecCounters() for r in run.requests]
    if all(s is not None for s in base_specs):
        checks += v.acceptance_checks(base_specs, new_specs, [r["output_tokens"] for r in reqs],
                                      [r.output_tokens for r in run.requests], tolerances["acceptance_rate"], alpha,
                                      rng, exact=rec["conditions"].get("temperature") == 0.0)
    elif rec.get("counters") and run.counters.drafts:
        # Serving: HTTP carries no per-request counts, so the run's counters are judged as one
        # sample (no interval to speak of: a change beyond tolerance fails).
        checks += v.acceptance_checks([SpecCounters.from_dict(rec["counters"])], [run.counters], [sum(r["output_tokens"] for r in reqs)],
                                      [sum(r.output_tokens for r in run.requests)], tolerances["acceptance_rate"],
                                      alpha, rng, exact=True)
    # Every speculative condition with per-request counts on either side (a record without any is
    # compared as zeros: speculation that starts or stops is a change); servers report none.
    if run.k and exact_counts(rec, environment) and any(s is not None for s in base_specs + [r.spec for r in run.requests]):
        checks.append(v.exact_acceptance_check(base_specs, [r.spec for r in run.requests], prompt_ids))
    if any("tokens" in r for r in reqs):
        from specgate.records.fingerprint import tokens_digest

        other_hw = rec["recorded"].get("hardware") != environment.get("hardware")
        allowed = math.floor(tolerances["cross_hardware_tokens"] * len(reqs)) if other_hw else 0
        checks.append(v.token_check([r.get("tokens") for r in reqs],
                                    [tokens_digest(r.output_token_ids) for r in run.requests], allowed, prompt_ids))
    return checks


def exact_counts(rec: dict, environment: dict) -> bool:
    """Whether a portable record's acceptance counts are judged exactly (verdict.exact_acceptance_check):
    a run at temperature 0 on the hardware tag it was recorded on (the dtype is part of the record's
    key). Elsewhere kernels may round differently: the ratio checks' tolerance applies alone."""
    return rec["conditions"].get("temperature") == 0.0 and rec["recorded"].get("hardware") == environment.get("hardware")


def judge_timing(rec: dict, run: RunResult, control: RunResult | None, tolerances: dict,
                 rng: np.random.Generator, alpha: float = v.ALPHA) -> list[v.Check]:
    lat_n = np.array([r.latency_s or np.nan for r in run.requests], float)
    lat_b = np.array([x or np.nan for x in rec.get("latency_s") or []], float)
    if len(lat_b) != len(lat_n) or not (np.isfinite(lat_b).all() and np.isfinite(lat_n).all()):
        return []  # batch mode: no per-request latency, and batch timing is not judged (docs/baselines.md)
    checks = blocked_checks(rec, run, lat_b, lat_n, tolerances, rng, alpha)
    reference = [r.reference_latency_s for r in run.requests]
    if control is None and rec.get("reference") and all(reference) and len(rec["reference"]["latency_s"]) == len(lat_n):
        # Measured on the shared 2-core machine: this ratio moved -25%..+7% between unchanged runs,
        # so it has the control's wide tolerance (docs/baselines.md), not latency's. The control's
        # absolute latency is not judged beside it: a one-core load multiplied it by 4.5.
        ref_b = np.array(rec["reference"]["latency_s"], float)
        return checks + [v.paired_ratio_check((lat_b, ref_b), (lat_n, np.array(reference, float)),
                                              tolerances["control_latency"], alpha, rng, "latency_vs_reference",
                                              "vLLM / transformers latency per prompt")]
    checks += streaming_checks(rec, run, tolerances, rng, alpha)
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


def blocked_checks(rec: dict, run: RunResult, lat_b: np.ndarray, lat_n: np.ndarray, tolerances: dict,
                   rng: np.random.Generator, alpha: float = v.ALPHA) -> list[v.Check]:
    """The engine thread's blocked share against the record's, where both measured its schedule
    (a record without runnable time was made on an idle machine: none is counted)."""
    busy_n = [None if r.cpu_s is None else r.cpu_s + (r.queued_s or 0.0) for r in run.requests]
    cpu_b, queued_b = rec.get("cpu_s") or [], rec.get("queued_s") or [0.0] * len(lat_b)
    if len(cpu_b) != len(lat_b) or None in busy_n or None in cpu_b:
        return []
    return [v.blocked_check((lat_b, np.array(cpu_b, float) + np.array(queued_b, float)),
                            (lat_n, np.array(busy_n, float)), tolerances["blocked"], alpha, rng)]


def streaming_checks(rec: dict, run: RunResult, tolerances: dict, rng: np.random.Generator,
                     alpha: float = v.ALPHA) -> list[v.Check]:
    """Serving: time to first token and mean inter-token latency per request against the record,
    at the latency tolerance of the condition (the control's for a control)."""
    checks = []
    tol = tolerances["latency"] if run.k else tolerances["control_latency"]
    now = {"ttft": [r.ttft_s for r in run.requests],
           "itl": [sum(r.itl_s) / len(r.itl_s) if r.itl_s else None for r in run.requests]}
    for name in ("ttft", "itl"):
        base = rec.get(f"{name}_s")
        if not base or len(base) != len(now[name]):
            continue
        pairs = [(b, n) for b, n in zip(base, now[name]) if b and n]
        if len(pairs) >= 2:
            b, n = (np.array(x, float) for x in zip(*pairs))
            checks.append(v.latency_check(b, n, tol, alpha, rng, metric=name))
    return checks


@dataclass(frozen=True)
class Evidence:
    """What one condition's verdict is taken on: its run and everything it is compared with.

    ``portable`` and ``timing``: (record, why there is none). ``control``: the no-speculation run
    beside it (None for a control). ``problems``: what the in-run checks found (correctness.py,
    feature_checks.py). ``in_run``: names of in-run checks that judge the run on their own (a feature
    cell's), so a run with no record to compare still gets a verdict from them. ``calls``: what
    one short request called now (engines/code_path.py), judged against the timing record's."""

    run: RunResult
    control: RunResult | None
    portable: tuple[dict | None, str]
    timing: tuple[dict | None, str]
    prompt_ids: list[str]
    problems: list[str] = ()
    in_run: tuple[str, ...] = ()
    calls: dict | None = None


def judge_condition(evidence: Evidence, environment: dict, tolerances: dict | None, seed: int = 0) -> v.Verdict:
    """One condition's verdict: the records' checks, the in-run problems, and notes saying what
    was judged against what (versions, hardware, exact or within tolerance)."""
    run, control, prompt_ids, problems, calls = (evidence.run, evidence.control, evidence.prompt_ids,
                                                 evidence.problems, evidence.calls)
    tol = with_defaults(tolerances)
    rng = np.random.default_rng(seed)
    checks = [v.Check(name, True, 0.0, 0.0, 0.0, None, 0.0, "in-run check passed") for name in evidence.in_run
              if not problems]
    notes = []
    (prec, pwhy), (trec, twhy) = evidence.portable, evidence.timing
    if prec is not None:
        portable_checks = judge_portable(prec, run, environment, tol, prompt_ids, rng)
        checks += portable_checks
        notes.append(f"acceptance/tokens judged {_how(portable_checks, prec, environment, tol)} against the portable "
                     f"record from {prec['recorded'].get('hardware')} ({v.versions(prec['recorded'], environment)})")
    else:
        notes.append(f"acceptance/tokens not judged: {pwhy}")
    if trec is not None:
        judged = judge_timing(trec, run, control, tol, rng)
        checks += judged
        code, note = code_path.check(trec.get("code_path"), calls)
        checks += code
        notes += [note] if note else []
        notes.append(f"timing judged against {environment.get('hardware')} ({v.versions(trec['recorded'], environment)})"
                     if judged else "timing not judged: this mode has no per-request latency")
    else:
        notes.append(f"timing not judged: {twhy}")
    prefix = ""
    if prec is not None and prec["recorded"].get("vllm") != environment.get("vllm"):
        prefix = f"vLLM {prec['recorded'].get('vllm')} -> {environment.get('vllm')}: "
    sources = [rec["recorded"] for rec in (prec, trec) if rec is not None]
    return replace(v.combine(checks, list(problems), notes, prefix),
                   sources=tuple(s for i, s in enumerate(sources) if s not in sources[:i]))


def _how(checks: list[v.Check], rec: dict, environment: dict, tol: dict) -> str:
    """How acceptance was judged against a portable record, for the verdict's notes."""
    if any(c.metric == "acceptance_counts" for c in checks):
        return "exactly, request by request (temperature 0, same hardware)"
    if not exact_counts(rec, environment):
        return f"within {tol['acceptance_rate']:.0%} (another hardware tag or temperature > 0)"
    return "as recorded (no per-request acceptance counts here: a control, a refusal or a server)"


def judge_refused(reason: str, portable: tuple[dict | None, str], environment: dict) -> v.Verdict:
    """A feature cell vLLM refused to build or run, against its portable record."""
    rec, why = portable
    if rec is None:
        return v.no_baseline(f"vLLM refuses this combination ({reason}); {why}")
    if "unsupported" in rec:
        return v.Verdict("unsupported", f"vLLM refuses this combination, as in the baseline: {reason}",
                         notes=(f"unsupported as recorded ({v.versions(rec['recorded'], environment)})",))
    return v.Verdict("fail", f"vLLM {environment.get('vllm')} refuses a combination that vLLM "
                             f"{rec['recorded'].get('vllm')} ran when the baseline was recorded: {reason}")
