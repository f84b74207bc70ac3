"""Presentation: metrics (plain dicts, as in a results document) -> text and Markdown tables, and
the Markdown summary of a run (terminal, $GITHUB_STEP_SUMMARY, reports/summary.md)."""

from __future__ import annotations

from .sweep import best_k, series

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


def markdown_summary(doc: dict, charts: list[str] | None = None) -> str:
    """The run in Markdown: metrics with verdicts, stage times and speedup model, best k, failures."""
    env = doc.get("environment", {})
    rows = [(cid, e["metrics"]) for cid, e in doc["runs"].items()]
    verdicts = {cid: e["verdict"]["status"] for cid, e in doc["runs"].items() if e.get("verdict")}
    parts = ["## specgate results",
             f"hardware `{env.get('hardware', '?')}`, vLLM {env.get('vllm', '?')}, torch {env.get('torch', '?')}, "
             f"commit {env.get('commit') or '?'}",
             "### Metrics", markdown_table(rows, verdicts)]
    stages = stage_table(rows, markdown=True)
    if stages:
        parts += ["### Stage times and speedup model",
                  "Proposal time per draft token; scoring (target forward) and verification (rejection sampling) "
                  "per step; alpha, c and the share of steps that drafted feed the Leviathan et al. model behind "
                  "the predicted speedup.", stages]
    best = best_k_table(doc, markdown=True)
    if best:
        parts += ["### Best k", best]
    problems = [f"- **{cid}**: {e['verdict']['status']}: {e['verdict']['reason']}" for cid, e in doc["runs"].items()
                if e.get("verdict") and e["verdict"]["status"] in ("fail", "error")]
    if problems:
        parts += ["### Regressions and errors"] + problems
    if charts:
        parts += ["### Charts", "\n".join(f"- {c}" for c in charts)]
    return "\n\n".join(parts) + "\n"
