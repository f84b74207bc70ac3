"""Presentation: metrics (plain dicts, as in a results document) -> text and Markdown tables, and
the Markdown summary of a run (terminal, $GITHUB_STEP_SUMMARY, reports/summary.md)."""

from __future__ import annotations

import textwrap

from specgate.report.sweep import best_k, context_series, series

COLUMNS = [
    ("condition", "condition"),
    ("k", "k"),
    ("acc rate", "acceptance_rate"),
    ("mean acc len", "mean_acceptance_length"),
    ("efficiency", "system_efficiency"),
    ("per-position acc", "per_position_acceptance"),
    ("latency s", "latency_mean_s"),
    ("tpot ms", "time_per_output_token_ms"),
    ("tok/s", "tokens_per_s"),
    ("speedup", "speedup"),
]
METRICS_LEGEND = ("acc rate: accepted / drafted tokens; mean acc len: tokens per verification step (bonus token "
                  "included); efficiency: tokens emitted / what a perfect proposer at k would emit; per-position acc: "
                  "acceptance at draft position 1..k; latency s: mean per request; tpot ms: time per output token; "
                  "speedup: tokens/s over the no-speculation control's (with paired_control, from the control timed "
                  "beside each request; feature cells: -, not timed beside a control). docs/metrics.md defines each.")
STAGE_COLUMNS = [
    ("condition", "condition"),
    ("k", "k"),
    ("prop ms/tok", "proposal_ms_per_token"),
    ("score ms/step", "scoring_ms_per_step"),
    ("verif ms/step", "verification_ms_per_step"),
    ("step ms", "step_ms"),
    ("share score/prop/verif/other", "stage_shares"),
    ("alpha", "alpha"),
    ("c", "cost_ratio"),
    ("drafting steps", "draft_coverage"),
    ("predicted speedup", "predicted_speedup"),
    ("measured speedup", "speedup"),
]


STREAM_COLUMNS = [("condition", "condition")] + [
    (f"{name} {stat} ms", f"{name.lower()}_{stat}_ms") for name in ("TTFT", "ITL") for stat in ("mean", "p50", "p90", "p99")]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return "/".join(f"{100 * v:.0f}%" for v in value.values())
    if isinstance(value, (tuple, list)):
        return " ".join(f"{v:.2f}" for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def _rows(columns, rows: list[tuple[str, dict]]) -> list[list[str]]:
    return [[name] + [_cell(m.get(attr)) for _, attr in columns[1:]] for name, m in rows]


def _render(header: list[str], body: list[list[str]], markdown: bool) -> str:
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(r):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "| " + " | ".join(cells) + " |" if markdown else "  ".join(cells)

    rule = ("|" + "|".join("-" * (w + 2) for w in widths) + "|") if markdown else "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(r) for r in body])


def text_table(rows: list[tuple[str, dict]], verdicts: dict[str, str] | None = None, markdown: bool = False) -> str:
    """One row per condition, in run order (a verdict column when given)."""
    header = [title for title, _ in COLUMNS]
    body = _rows(COLUMNS, rows)
    if verdicts:
        header.append("verdict")
        body = [r + [verdicts.get(r[0], "-")] for r in body]
    return _render(header, body, markdown)


def markdown_table(rows: list[tuple[str, dict]], verdicts: dict[str, str] | None = None) -> str:
    return text_table(rows, verdicts, markdown=True)


def stage_table(rows: list[tuple[str, dict]], markdown: bool = False) -> str:
    """Stage times and the speedup model per speculative condition (controls have no stages to split)."""
    spec = [(name, m) for name, m in rows if m.get("k")]
    return _render([t for t, _ in STAGE_COLUMNS], _rows(STAGE_COLUMNS, spec), markdown) if spec else ""


def best_k_table(doc: dict, markdown: bool = False) -> str:
    found = [best_k(s) for s in series(doc)]
    if not found:
        return ""
    header = ["series", "best k measured", "speedup", "best k (model)", "model speedup", "alpha", "c"]
    body = [[b.label, _cell(b.measured_k), _cell(b.measured_speedup), _cell(b.model_k), _cell(b.model_speedup),
             _cell(b.alpha), _cell(b.cost_ratio)] for b in found]
    return _render(header, body, markdown)


def best_k_note(doc: dict) -> str:
    """What the best-k table means, and which series no k makes faster than no speculation."""
    slower = [b.label for b in map(best_k, series(doc)) if b.measured_speedup is not None and b.measured_speedup < 1]
    note = ("The swept k with the highest measured speedup, and the k the Leviathan et al. model predicts best from "
            "the series' alpha (acceptance) and c (draft cost relative to a target step).")
    if slower:
        note += (f" **No k beats no speculation** for {', '.join(slower)}: its best k is only the least slow; "
                 f"do not turn speculation on for that workload.")
    return note


def context_table(doc: dict, markdown: bool = False) -> str:
    """Per drafter x k, each context bucket: mean prompt tokens, acceptance, per-position acceptance
    and the speedup over its control (paired where the condition ran sequentially)."""
    body = [[s.label, f"{x:.0f}", pairing, _cell(m.get("acceptance_rate")),
             " ".join(f"{r:.2f}" for r in m.get("per_position_acceptance") or []) or "-", _cell(m.get("speedup"))]
            for s in context_series(doc) for x, pairing, m in s.points]
    return _render(["drafter", "prompt tokens", "pairing", "accept", "per position", "speedup"], body,
                   markdown) if body else ""


STATUS_WORDS = {"error": "ERROR", "fail": "FAIL", "known-defect": "known defect", "no-baseline": "no baseline"}


def feature_table(doc: dict, markdown: bool = False) -> str:
    """Feature x method (features axis): each cell's verdict, the controls as "no speculation"."""
    cells: dict[str, dict[str, list[str]]] = {}
    methods: list[str] = []
    for e in doc["runs"].values():
        facts = e["conditions"]
        if not facts.get("feature"):
            continue
        method = "no speculation" if facts["method"] == "none" else facts["method"]
        if method not in methods:
            methods.append(method)
        status = (e.get("verdict") or {}).get("status", "-")
        found = cells.setdefault(facts["feature"], {}).setdefault(method, [])
        if STATUS_WORDS.get(status, status) not in found:
            found.append(STATUS_WORDS.get(status, status))
    if not cells:
        return ""
    methods.sort(key=lambda m: m == "no speculation")
    body = [[f] + [", ".join(row.get(m, ["-"])) for m in methods] for f, row in cells.items()]
    return _render(["feature"] + methods, body, markdown)


def markdown_summary(doc: dict, charts: list[str] | None = None) -> str:
    """The run in Markdown: metrics with verdicts, stage times and speedup model, best k, failures."""
    env = doc.get("environment", {})
    rows = [(cid, e["metrics"]) for cid, e in doc["runs"].items()]
    verdicts = {cid: e["verdict"]["status"] for cid, e in doc["runs"].items() if e.get("verdict")}
    parts = ["## specgate results",
             f"Run of {str(env.get('date') or '?')[:16].replace('T', ' ')} UTC"
             + (f" from `{env['pairings']}`" if env.get("pairings") else "")
             + f": hardware `{env.get('hardware', '?')}`, vLLM {env.get('vllm', '?')}, torch {env.get('torch', '?')}, "
             f"commit {env.get('commit') or '?'}"]
    sources = source_lines({cid: (e.get("verdict") or {}).get("sources") or [] for cid, e in doc["runs"].items()}, env)
    if sources:
        parts += ["Judged against " + ("; ".join(sources) if len(sources) == 1 else "\n" + "\n".join(
            f"- {line}" for line in sources))]
    if charts and "regression.png" in charts:
        parts += ["### Changes against the baselines",
                  "![each condition's change against its baseline, with its interval and tolerance](regression.png)"]
    # A feature cell is not timed beside its control: a speedup there would be a warm-up artefact.
    rows = [(cid, {**m, "speedup": None} if (doc["runs"][cid].get("conditions") or {}).get("feature") else m)
            for cid, m in rows]
    parts += ["### Metrics", METRICS_LEGEND, markdown_table(rows, verdicts)]
    streamed = [(name, m) for name, m in rows if m.get("ttft_mean_ms") is not None]
    sections = [  # (title, what it shows, table); a section without a table is left out
        ("Serving: time to first token and inter-token latency",
         "Streamed requests; ITL is the gap between chunks, and with speculation a chunk often carries several "
         "tokens.", _render([t for t, _ in STREAM_COLUMNS], _rows(STREAM_COLUMNS, streamed), True) if streamed else ""),
        ("Stage times and speedup model",
         "prop ms/tok: proposal (drafting) time per draft token; score ms/step: the target's forward per step; verif "
         "ms/step: verification (rejection sampling) per step; share: of the step's time; alpha: per-position "
         "acceptance; c: a draft step's cost relative to a target step; drafting steps: the share of steps that "
         "drafted. alpha, c and that share feed the Leviathan et al. model behind the predicted speedup.",
         stage_table(rows, markdown=True)),
        ("Features with speculation",
         "Each cell switches one feature on with speculation and checks tokens against the same feature without "
         "speculation, acceptance against the plain cell and the baseline, and that the feature was exercised "
         "(docs/pairings.md, features).", feature_table(doc, markdown=True)),
        ("Best k", best_k_note(doc), best_k_table(doc, markdown=True)),
        ("Acceptance against context length",
         "The same drafter at the same k on prompts of several lengths (the long-code buckets); prompt tokens: the "
         "mean over the condition's requests; speedup: over its control, paired where it ran sequentially.",
         context_table(doc, markdown=True)),
    ]
    for title, what, table in sections:
        if table:
            parts += [f"### {title}"] + ([what] if what else []) + [table]
    problems = [f"- **{cid}**: {e['verdict']['status']}: {e['verdict']['reason']}" for cid, e in doc["runs"].items()
                if e.get("verdict") and e["verdict"]["status"] in ("fail", "error", "known-defect")]
    if problems:
        parts += ["### Regressions, errors and known defects"] + problems
    if charts:
        parts += ["### Charts", "\n".join(f"- {c}" for c in charts)]
    return "\n\n".join(parts) + "\n"


TERMINAL_WIDTH = 100


def _change(checks: list[dict], metric: str) -> str:
    found = next((c for c in checks if c.get("metric") == metric and c.get("change") is not None), None)
    if found is None or found["change"] != found["change"] or abs(found["change"]) == float("inf"):
        return "-"
    return f"{100 * found['change']:+.1f}%"


def terminal_table(doc: dict, width: int = TERMINAL_WIDTH) -> str:
    """The run in at most ``width`` columns, what matters first: condition, verdict, acceptance and
    its change against the baseline, speedup and the change of latency relative to the control;
    then one wrapped line per failed condition (the full Markdown is in summary.md)."""
    header = ["condition", "verdict", "accept", "change", "speedup", "lat/ctl"]
    rows, failures = [], []
    for cid, e in doc["runs"].items():
        v, m = e.get("verdict") or {}, e.get("metrics") or {}
        checks = v.get("checks", [])
        feature = (e.get("conditions") or {}).get("feature")
        rows.append([cid, STATUS_WORDS.get(v.get("status"), v.get("status", "-")),
                     _cell(m.get("acceptance_rate")), _change(checks, "acceptance_rate"),
                     # a feature cell is not timed beside its control: its speedup means nothing
                     "-" if feature else _cell(m.get("speedup")), _change(checks, "latency_vs_control")])
        if v.get("status") in ("fail", "error"):
            failures.append(f"{STATUS_WORDS[v['status']]} {cid}: {v.get('reason', '')}")
    fixed = [max(len(r[i]) for r in [header] + rows) for i in range(1, len(header))]
    name_w = min(max(len(r[0]) for r in [header] + rows), width - sum(fixed) - 2 * len(fixed))

    def line(r):
        name = r[0] if len(r[0]) <= name_w else r[0][: name_w - 1] + "~"
        return "  ".join([name.ljust(name_w)] + [c.rjust(w) for c, w in zip(r[1:], fixed)])

    table = [line(r) for r in [header] + rows]
    wrapped = [part for text in failures
               for part in textwrap.wrap(text, width, subsequent_indent="    ", break_on_hyphens=False)]
    return "\n".join([table[0], "-" * len(table[0])] + table[1:] + wrapped)


def condition_line(condition_id: str, verdict, acceptance: float | None, speedup: float | None) -> str:
    """One line per condition as it ends: verdict, acceptance, speedup, the first failed check."""
    parts = [f"{condition_id}: {verdict.status}"]
    if acceptance is not None:
        parts.append(f"acceptance {acceptance:.3f}")
    if speedup is not None:
        parts.append(f"speedup {speedup:.2f}")
    failed = [c.metric for c in verdict.failures]
    why = ""
    if verdict.status in ("fail", "known-defect", "unsupported", "no-baseline"):
        short = textwrap.shorten(verdict.reason, 80, placeholder=" ...")  # at a word, never mid-word
        why = f" ({failed[0]} failed)" if failed else f" ({short})"
    return ", ".join(parts) + why


def source_lines(sources: dict[str, list[dict]], environment: dict) -> list[str]:
    """One line per distinct source of the records the conditions were judged against (``sources``:
    condition id -> the records' "recorded" facts), saying how it differs from this run."""
    by_source: dict[tuple, list[str]] = {}
    for cid, found in sources.items():
        for rec in found:
            by_source.setdefault(tuple(rec.get(k) or "?" for k in SOURCE_FACTS), []).append(cid)
    lines = []
    for source, cids in by_source.items():
        rec = dict(zip(SOURCE_FACTS, source))
        differs = [f"{k} {rec[k]} -> {environment.get(k)}" for k in ("vllm", "torch", "hardware")
                   if rec[k] != (environment.get(k) or "?")]
        lines.append(f"records from vLLM {rec['vllm']}, torch {rec['torch']}, {rec['hardware']}, recorded "
                     f"{str(rec['date'])[:10]} at commit {str(rec['commit'])[:10]}: {len(set(cids))} conditions"
                     + (f" (other than this run: {', '.join(differs)})" if differs else " (same software and hardware)"))
    return lines


SOURCE_FACTS = ("vllm", "torch", "hardware", "date", "commit")


def judged_lines(verdicts: dict, feature_cells: set[str], environment: dict, strict: bool) -> list[tuple[str, bool]]:
    """One line on what was judged (acceptance, timing) and one per source of the records ->
    (line, whether a strict run must fail). Feature cells have no timing records (their subject
    is correctness): not counted for timing."""
    hardware = environment.get("hardware")
    if not verdicts or all(v.status in ("recorded", "known-defect", "unsupported") for v in verdicts.values()):
        return []
    unjudged = [cid for cid, v in verdicts.items() if v.status == "no-baseline" or (
        v.status not in ("unsupported", "known-defect")
        and any(n.startswith("acceptance/tokens not judged") for n in v.notes))]
    timing = [n for cid, v in verdicts.items() for n in v.notes if n.startswith("timing") and cid not in feature_cells]
    lines = [(f"acceptance and tokens judged for {len(verdicts) - len(unjudged)} of {len(verdicts)} conditions"
              + (f"; NOT judged: {', '.join(unjudged[:5])}{' ...' if len(unjudged) > 5 else ''}" if unjudged else ""),
              bool(unjudged) and strict)]
    untimed = [n for n in timing if n.startswith("timing not judged")]
    if untimed:
        lines.append((f"timing NOT judged for {len(untimed)} of {len(timing)} conditions: {untimed[0].split(': ', 1)[1]}",
                      False))
    elif timing:
        lines.append((f"timing judged for all {len(timing)} conditions on {hardware}, relative to the "
                      f"no-speculation control of the same run", False))
    lines += [(line, False) for line in source_lines({cid: list(v.sources) for cid, v in verdicts.items()},
                                                     environment)]
    if any(is_error for _, is_error in lines):
        lines.append(("strict: conditions without a comparable baseline fail this run (--specgate-strict)", True))
    return lines
