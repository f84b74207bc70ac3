"""Presentation: metrics -> text tables for the terminal and Markdown."""

from __future__ import annotations

from .metrics import RunMetrics

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


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return " ".join(f"{v:.2f}" for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def table_rows(rows: list[tuple[str, RunMetrics]]) -> list[list[str]]:
    return [[name] + [_cell(getattr(m, attr)) for _, attr in COLUMNS[1:]] for name, m in rows]


def text_table(rows: list[tuple[str, RunMetrics]], verdicts: dict[str, str] | None = None) -> str:
    """Fixed-width table, one row per condition, in run order (a verdict column when given)."""
    header = [title for title, _ in COLUMNS]
    body = table_rows(rows)
    if verdicts:
        header.append("verdict")
        body = [r + [verdicts.get(r[0], "-")] for r in body]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in body])


def markdown_table(rows: list[tuple[str, RunMetrics]]) -> str:
    header = [title for title, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table_rows(rows)])
