"""Every chart of a report, one PNG each (matplotlib, Agg), from a results document: the origin's
six charts against the number of speculative tokens, per-position acceptance, measured vs
predicted speedup, the serving charts against concurrency, and the regression picture.
CHART_NAMES names them all; a chart without data is not written."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from specgate.report.sweep import INTERVAL_LEVEL, ContextSeries, Series, context_series, series

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
K_AXIS = "number of speculative tokens k"
CONCURRENCY_AXIS = "concurrent requests"


def _line(metric: str):
    return lambda ax, run, ref: _metric_lines(ax, metric, run, ref)


# The charts drawn from the run's series, in the order written: file stem, title, x-axis label,
# y-axis label, draw(ax, the run's series, the reference's series) -> whether it drew anything.
SERIES_CHARTS = tuple((stem, title, K_AXIS, ylabel, _line(metric)) for stem, title, ylabel, metric in LINE_CHARTS) + (
    ("per_position_acceptance", "Per-position acceptance", "draft position i",
     "steps whose i-th draft token was accepted / steps", lambda ax, run, ref: _per_position(ax, run)),
    ("speedup", "Speedup: measured vs predicted (Leviathan et al. 2023)", K_AXIS,
     "tokens/s over no speculation (x)", lambda ax, run, ref: _speedup(ax, run)),
    ("serving_speedup", "Serving: speedup under load", CONCURRENCY_AXIS, "output tokens/s over no speculation (x)",
     lambda ax, run, ref: _serving(ax, run)),
    ("serving_latency", "Serving: time to first token (solid) and inter-token latency (dashed), p50",
     CONCURRENCY_AXIS, "milliseconds", lambda ax, run, ref: _serving_stream(ax, run)),
)
REGRESSION_CHART = "regression"  # drawn from the verdicts' checks (regression_chart), written first
# Acceptance against the prompts' length, for drafters run on prompts of several lengths (sweep.context_series).
CONTEXT_CHART = ("acceptance_vs_context", "Draft acceptance rate against context length", "mean prompt length (tokens)",
                 "accepted / proposed draft tokens")
CHART_NAMES = (REGRESSION_CHART,) + tuple(chart[0] for chart in SERIES_CHARTS) + (CONTEXT_CHART[0],)
# Charts that draw the no-speculation run as a reference line (its latency; its plain decode step).
CONTROL_REFERENCE = ("latency_mean_s", "scoring_ms_per_step")
# The regression picture: each condition's change against its baseline, one panel per check drawn
# with its interval (the rest of the verdict's checks are counted in a last column).
REGRESSION_CHECKS = (("acceptance_rate", "acceptance rate"), ("latency_vs_control", "latency / paired control"),
                     ("latency_vs_reference", "control / machine reference"))
VERDICT_COLOURS = {"pass": "tab:green", "fail": "tab:red", "known-defect": "tab:orange"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _subtitle(doc: dict, all_series: list[Series]) -> str:
    env = doc.get("environment", {})
    facts = all_series[0].facts if all_series else {}
    # A local model's id is its content hash: name it by its last two folders instead.
    target = str(facts.get("target_path") or facts.get("target") or "?")
    parts = [f"target {'/'.join(target.rstrip('/').split('/')[-2:])}"]
    if len({s.facts.get("prompt_set") for s in all_series}) == 1:
        parts.append(f"prompts {facts.get('prompt_set')} x{facts.get('num_prompts')}")
    parts.append(f"temperature {facts.get('temperature')}")
    return (", ".join(parts) + f"; {env.get('hardware', '?')}, vLLM {env.get('vllm', '?')}\nerror bars (where drawn): "
            f"the {INTERVAL_LEVEL:.0%} bootstrap interval over requests")


def _finish(plt, fig, ax, path: Path, title: str, subtitle: str, xlabel: str, ylabel: str) -> Path:
    fig.suptitle(title, fontsize=12, x=0.02, ha="left")
    ax.set_title(subtitle, fontsize=8, loc="left", color="dimgray")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    # Below the plot, in columns: beside it, a long legend took half the figure's width.
    handles = ax.get_legend_handles_labels()[0]
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(3, max(1, len(handles))),
              frameon=False)
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
    """The paths of the charts written (of CHART_NAMES, those with data). ``reference``, runs in
    the form sweep.series reads (origin.origin_reference()), is drawn dotted beside the run, for
    shape only."""
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    all_series = series(doc)
    if not all_series:
        return []
    sub = _subtitle(doc, all_series)
    ref_series = series(reference) if reference else []
    written = [regression_chart(plt, doc, folder / f"{REGRESSION_CHART}.png")]
    written += [_chart(plt, lambda ax, draw=draw: draw(ax, all_series, ref_series), folder / f"{stem}.png", title,
                       sub, xlabel, ylabel)
                for stem, title, xlabel, ylabel, draw in SERIES_CHARTS]
    stem, title, xlabel, ylabel = CONTEXT_CHART
    written.append(_chart(plt, lambda ax: _context(ax, context_series(doc)), folder / f"{stem}.png", title, sub,
                          xlabel, ylabel))
    return [p for p in written if p is not None]


def regression_chart(plt, doc: dict, path: Path) -> Path | None:
    """What changed against the baseline, and is it significant: per condition, the relative change
    (dot) of each check of REGRESSION_CHECKS, its bootstrap interval (bar) and where the check
    passes (grey: two-sided for acceptance, everything left of the tolerance for the one-sided
    latency checks), coloured by the check's outcome; a last column counts every check of the
    verdict and names the failed ones. None when no check has a change to draw."""
    rows = []
    for cid, e in doc["runs"].items():
        v = e.get("verdict") or {}
        every = v.get("checks", [])
        checks = {c["metric"]: c for c in every if c.get("change") is not None and abs(c["change"]) != float("inf")}
        if any(m in checks for m, _ in REGRESSION_CHECKS):
            rows.append((cid, v.get("status"), checks, every))
    if not rows:
        return None
    panels = [(m, label) for m, label in REGRESSION_CHECKS if any(m in checks for _, _, checks, _ in rows)]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.2 * len(panels) + 3.2, 2.2 + 0.28 * len(rows)), sharey=True,
                             gridspec_kw={"width_ratios": [4.2] * len(panels) + [3.2]})
    ys = list(range(len(rows)))[::-1]
    for ax, (metric, label) in zip(axes, panels):
        drawn = [(y, status, checks[metric]) for y, (_, status, checks, _) in zip(ys, rows) if metric in checks]
        one_sided = any(c.get("one_sided") for _, _, c in drawn)
        values = [100 * x for _, _, c in drawn for x in [c["change"], *(c.get("interval") or ()),
                                                          c.get("tolerance") or 0, -(c.get("tolerance") or 0)]
                  if math.isfinite(x)]
        left, right = min(values) - 2, max(values) + 2
        for y, status, c in drawn:
            tol = min(100 * (c.get("tolerance") or 0), right)  # an infinite tolerance: the check cannot fail
            ax.fill_betweenx([y - 0.4, y + 0.4], left if c.get("one_sided") else -tol, tol, color="0.88", linewidth=0)
            # The check's own outcome: a condition that failed on latency keeps a green acceptance dot.
            colour = VERDICT_COLOURS["fail" if not c.get("passed", True) else
                                     "known-defect" if status == "known-defect" else "pass"]
            if c.get("interval"):
                lo, hi = (100 * x for x in c["interval"])
                ax.plot([lo, hi], [y, y], color=colour, linewidth=2, alpha=0.6)
            ax.plot([100 * c["change"]], [y], "o", color=colour, markersize=5)
        ax.set_xlim(left, right)
        ax.axvline(0, color="black", linewidth=0.8)
        confidences = sorted({round(100 * c["confidence"], 1) for _, _, c in drawn if c.get("confidence")})
        interval = (f"bar {confidences[0]:g}%" if len(confidences) == 1 else
                    f"bar {confidences[0]:g}-{confidences[-1]:g}%" if confidences else "")
        sided = "one-sided: a rise fails" if one_sided else "two-sided"
        ax.set_title(f"{label}, change (%)\n{sided}; {interval}", fontsize=8, loc="left")
        ax.grid(axis="x", alpha=0.3)
    text_ax = axes[-1]
    text_ax.set_xlim(0, 1)
    text_ax.axis("off")
    text_ax.set_title("every check of the verdict", fontsize=8, loc="left")
    for y, (_, status, _, every) in zip(ys, rows):
        failed = [c["metric"] for c in every if not c.get("passed", True)]
        text = (f"failed: {', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''}" if failed
                else f"all {len(every)} passed")
        colour = VERDICT_COLOURS["fail" if failed and status != "known-defect" else
                                 "known-defect" if status == "known-defect" else "pass"]
        text_ax.text(0.02, y, text, va="center", fontsize=7, color=colour)
    axes[0].set_yticks(ys)
    axes[0].set_yticklabels([cid for cid, _, _, _ in rows], fontsize=7)
    axes[0].set_ylim(-0.6, len(rows) - 0.4)
    env = doc.get("environment", {})
    fig.suptitle(f"Regressions: change against the baseline, {env.get('hardware', '?')}, vLLM {env.get('vllm', '?')}"
                 "\ndot: change; bar: bootstrap interval over requests; grey: where the check passes (tolerance); "
                 "green passed, red failed, orange known defect. At temperature 0 acceptance is exact: any move "
                 "beyond the band fails", fontsize=8, x=0.02, ha="left", va="top", y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))  # room for the two-line title above the panels
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _metric_lines(ax, metric: str, all_series: list[Series], ref_series: list[Series]) -> bool:
    drawn = baselines_drawn = False
    for s in all_series:
        ks, values = s.values(metric)
        if not ks:
            continue
        line, = ax.plot(ks, values, marker="o", label=s.label)
        drawn = True
        bars = [(k, v, m.get(f"{metric}_interval")) for (k, m), v in zip([p for p in s.points if p[1].get(metric)
                                                                          is not None], values)]
        bars = [(k, v, iv) for k, v, iv in bars if iv]
        if bars:
            ax.errorbar([k for k, _, _ in bars], [v for _, v, _ in bars],
                        yerr=[[v - iv[0] for _, v, iv in bars], [iv[1] - v for _, v, iv in bars]],
                        fmt="none", ecolor=line.get_color(), alpha=0.5, capsize=3)
        bk, baseline = s.values(f"{metric}_baseline")
        if bk:
            ax.plot(bk, baseline, linestyle="--", marker="o", markerfacecolor="none", color=line.get_color(), alpha=0.7)
            baselines_drawn = True
    shown = set(_ks(all_series))
    for s in ref_series:
        # Only at the run's k: the origin's figures reach k = 20 and squeezed the run's curves.
        ks, values = s.values(metric)
        ks, values = [k for k in ks if k in shown], [v for k, v in zip(ks, values) if k in shown]
        if ks:
            ax.plot(ks, values, linestyle=":", marker=".", alpha=0.7, label=f"{s.label} (reference, not a gate)")
    if metric in CONTROL_REFERENCE:
        controls = {(s.facts.get("prompt_set"), s.facts.get("mode")): s.control for s in all_series if s.control}
        for style, ((prompt_set, mode), control) in zip(itertools.cycle(("--", "-.", ":")), controls.items()):
            if control.get(metric) is not None:
                label = "no speculation" + (f" ({prompt_set}, {mode})" if len(controls) > 1 else "")
                ax.axhline(control[metric], color="black", linestyle=style, linewidth=1, label=label)
    if baselines_drawn:  # one legend entry for every series' baseline
        ax.plot([], [], linestyle="--", marker="o", markerfacecolor="none", color="gray",
                label="the baseline judged against (hollow, dashed)")
    if metric in ("acceptance_rate", "system_efficiency"):
        ax.set_ylim(0, 1.02)
    else:
        ax.set_ylim(bottom=0)
    ax.set_xticks(_ks(all_series))
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


def _serving_stream(ax, all_series: list[Series]) -> bool:
    """Serving mode, streamed: TTFT and ITL (p50) against concurrency per (pairing, k) and control."""
    lines: dict[tuple, list[tuple[int, float, float]]] = {}
    for s in all_series:
        if s.facts.get("mode") != "serving":
            continue
        c = s.facts.get("concurrency", 1)
        for k, m in s.points:
            if m.get("ttft_p50_ms") is not None:
                lines.setdefault((f"{s.facts['pairing']} {s.facts['method']} k={k}",), []).append(
                    (c, m["ttft_p50_ms"], m.get("itl_p50_ms")))
        if s.control and s.control.get("ttft_p50_ms") is not None:
            lines.setdefault(("no speculation",), [])
            if c not in [x[0] for x in lines[("no speculation",)]]:
                lines[("no speculation",)].append((c, s.control["ttft_p50_ms"], s.control.get("itl_p50_ms")))
    for (name,), pts in sorted(lines.items()):
        pts.sort()
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{name} TTFT")
        itl = [(p[0], p[2]) for p in pts if p[2] is not None]
        if itl:
            ax.plot([x for x, _ in itl], [y for _, y in itl], marker="x", linestyle="--", color=line.get_color(),
                    label=f"{name} ITL")
    if lines:
        import matplotlib.ticker

        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({p[0] for pts in lines.values() for p in pts}))
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


def _context(ax, all_series: list[ContextSeries]) -> bool:
    """Acceptance per context bucket, a line per drafter x k, with the interval over requests and
    the baseline judged against (hollow, dashed), on a log axis (buckets grow geometrically)."""
    baselines_drawn = False
    for s in all_series:
        xs = [x for x, _, _ in s.points]
        line, = ax.plot(xs, [m.get("acceptance_rate") for _, _, m in s.points], marker="o", label=s.label)
        bars = [(x, m["acceptance_rate"], m.get("acceptance_rate_interval")) for x, _, m in s.points
                if m.get("acceptance_rate") is not None]
        bars = [(x, v, iv) for x, v, iv in bars if iv]
        if bars:
            ax.errorbar([x for x, _, _ in bars], [v for _, v, _ in bars],
                        yerr=[[v - iv[0] for _, v, iv in bars], [iv[1] - v for _, v, iv in bars]],
                        fmt="none", ecolor=line.get_color(), alpha=0.5, capsize=3)
        base = [(x, m["acceptance_rate_baseline"]) for x, _, m in s.points if m.get("acceptance_rate_baseline")]
        if base:
            ax.plot(*zip(*base), linestyle="--", marker="o", markerfacecolor="none", color=line.get_color(), alpha=0.7)
            baselines_drawn = True
    if baselines_drawn:
        ax.plot([], [], linestyle="--", marker="o", markerfacecolor="none", color="gray",
                label="the baseline judged against (hollow, dashed)")
    if all_series:
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
    return bool(all_series)
