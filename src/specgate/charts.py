"""The origin's six charts against the number of speculative tokens, plus per-position acceptance
and measured vs predicted speedup: results document -> one PNG per chart (matplotlib, Agg)."""

from __future__ import annotations

import itertools
from pathlib import Path

from .sweep import Series, series

# file stem, title, y-axis label, metric (per k)
LINE_CHARTS = (
    ("acceptance_rate", "Draft acceptance rate", "accepted / proposed draft tokens", "acceptance_rate"),
    ("system_efficiency", "System efficiency", "emitted tokens / (k + 1) per step", "system_efficiency"),
    ("proposal_time", "Average time per proposal token", "proposer time per draft token (ms)",
     "proposal_ms_per_token"),
    ("scoring_time", "Scoring time (target forward over the drafts)", "time per step (ms)", "scoring_ms_per_step"),
    ("verification_time", "Verification time (rejection sampling)", "time per step (ms)",
     "verification_ms_per_step"),
    ("runtime", "Runtime: mean latency per request", "latency per request (s)", "latency_mean_s"),
)
# Charts that draw the no-speculation run as a reference line (its latency; its plain decode step).
CONTROL_REFERENCE = ("latency_mean_s", "scoring_ms_per_step")
CHART_NAMES = tuple(c[0] for c in LINE_CHARTS) + ("per_position_acceptance", "speedup")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _subtitle(doc: dict, all_series: list[Series]) -> str:
    env = doc.get("environment", {})
    facts = all_series[0].facts if all_series else {}
    target = str(facts.get("target", "?"))
    parts = [f"target {target.rstrip('/').rsplit('/', 1)[-1] if target.startswith('/') else target}"]
    if len({s.facts.get("prompt_set") for s in all_series}) == 1:
        parts.append(f"prompts {facts.get('prompt_set')} x{facts.get('num_prompts')}")
    parts.append(f"temperature {facts.get('temperature')}")
    return ", ".join(parts) + f"\n{env.get('hardware', '?')}, vLLM {env.get('vllm', '?')}"


def _finish(plt, fig, ax, path: Path, title: str, subtitle: str, xlabel: str, ylabel: str) -> Path:
    fig.suptitle(title, fontsize=12, x=0.02, ha="left")
    ax.set_title(subtitle.replace("\n", "; "), fontsize=8, loc="left", color="dimgray")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _chart(plt, draw, path: Path, title: str, sub: str, xlabel: str, ylabel: str) -> Path | None:
    """One figure: ``draw(ax)`` plots and says whether there was anything to plot."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if not draw(ax):
        plt.close(fig)
        return None
    return _finish(plt, fig, ax, path, title, sub, xlabel, ylabel)


def _ks(all_series: list[Series]) -> list[int]:
    return sorted({k for s in all_series for k, _ in s.points})


def write_charts(doc: dict, folder: Path, reference: dict | None = None) -> list[Path]:
    """Write every chart that has data; returns the paths written. ``reference`` (a results-like
    document, e.g. origin.origin_reference()) is drawn dotted beside the run, for shape only."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    all_series = series(doc)
    if not all_series:
        return []
    sub = _subtitle(doc, all_series)
    ref_series = series(reference) if reference else []
    k_axis = "number of speculative tokens k"
    charts = [(lambda ax, metric=metric: _metric_lines(ax, metric, all_series, ref_series), stem, title, k_axis, ylabel)
              for stem, title, ylabel, metric in LINE_CHARTS]
    charts += [
        (lambda ax: _per_position(ax, all_series), "per_position_acceptance", "Per-position acceptance",
         "draft position i", "steps whose i-th draft token was accepted / steps"),
        (lambda ax: _speedup(ax, all_series), "speedup", "Speedup: measured vs predicted (Leviathan et al. 2023)",
         k_axis, "tokens/s over no speculation (x)"),
        (lambda ax: _serving(ax, all_series), "serving_speedup", "Serving: speedup under load",
         "concurrent requests", "output tokens/s over no speculation (x)"),
    ]
    written = [_chart(plt, draw, folder / f"{stem}.png", title, sub, xlabel, ylabel)
               for draw, stem, title, xlabel, ylabel in charts]
    return [p for p in written if p is not None]


def _metric_lines(ax, metric: str, all_series: list[Series], ref_series: list[Series]) -> bool:
    drawn = False
    for s in all_series:
        ks, values = s.values(metric)
        if ks:
            ax.plot(ks, values, marker="o", label=s.label)
            drawn = True
    for s in ref_series:
        ks, values = s.values(metric)
        if ks:
            ax.plot(ks, values, linestyle=":", marker=".", alpha=0.7, label=f"{s.label} (reference, not a gate)")
    if metric in CONTROL_REFERENCE:
        controls = {(s.facts.get("prompt_set"), s.facts.get("mode")): s.control for s in all_series if s.control}
        for style, ((prompt_set, mode), control) in zip(itertools.cycle(("--", "-.", ":")), controls.items()):
            if control.get(metric) is not None:
                label = "no speculation" + (f" ({prompt_set}, {mode})" if len(controls) > 1 else "")
                ax.axhline(control[metric], color="black", linestyle=style, linewidth=1, label=label)
    if metric in ("acceptance_rate", "system_efficiency"):
        ax.set_ylim(0, 1.02)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xticks(_ks(all_series + ref_series))
    return drawn


def _serving(ax, all_series: list[Series]) -> bool:
    """Serving mode: speedup against concurrency, one line per (pairing, k)."""
    lines: dict[tuple, list[tuple[int, float]]] = {}
    for s in all_series:
        if s.facts.get("mode") != "serving":
            continue
        for k, m in s.points:
            if m.get("speedup") is not None:
                name = f"{s.facts['pairing']} {s.facts['method']}"
                lines.setdefault((name, k), []).append((s.facts.get("concurrency", 1), m["speedup"]))
    for (pairing, k), pts in sorted(lines.items()):
        pts.sort()
        ax.plot([c for c, _ in pts], [v for _, v in pts], marker="o", label=f"{pairing} k={k}")
    if lines:
        import matplotlib.ticker

        ax.axhline(1.0, color="black", linewidth=1, linestyle=":", label="no speculation")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({c for pts in lines.values() for c, _ in pts}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_ylim(bottom=0)
    return bool(lines)


def _per_position(ax, all_series: list[Series]) -> bool:
    longest = 0
    for s in all_series:
        k, m = s.points[-1]  # the largest k shows every position
        rates = m.get("per_position_acceptance") or []
        if rates:
            ax.plot(range(1, len(rates) + 1), rates, marker="o", label=f"{s.label} (k={k})")
            longest = max(longest, len(rates))
    ax.set_ylim(0, 1.02)
    ax.set_xticks(range(1, longest + 1))
    return longest > 0


def _speedup(ax, all_series: list[Series]) -> bool:
    drawn = False
    for s in all_series:
        ks, measured = s.values("speedup")
        if not ks:
            continue
        line, = ax.plot(ks, measured, marker="o", label=f"{s.label} measured")
        pk, predicted = s.values("predicted_speedup")
        if pk:
            ax.plot(pk, predicted, marker="x", linestyle="--", color=line.get_color(), label=f"{s.label} predicted")
        drawn = True
    ax.axhline(1.0, color="black", linewidth=1, linestyle=":", label="no speculation")
    ax.set_ylim(bottom=0)
    ax.set_xticks(_ks(all_series))
    return drawn
