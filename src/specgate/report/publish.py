"""Everything a run writes at its end: the report folder (results.json, the charts, summary.md),
the results file, github-action-benchmark files, the CI step summary, and the terminal table."""

from __future__ import annotations

import contextlib
import json
import os
import textwrap
from pathlib import Path

from specgate.records.document import DocumentError, write, write_atomic
from specgate.report.tables import TERMINAL_WIDTH, markdown_summary, terminal_table


def write_report(doc: dict, folder: Path, with_results: bool = True,
                 reference: dict | None = None) -> tuple[str, list[Path]]:
    """-> (Markdown summary, files written). Charts need matplotlib (a specgate dependency)."""
    from specgate.report.charts import write_charts

    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "results.json"] if with_results else []
        if with_results:
            write(folder / "results.json", doc)
        charts = write_charts(doc, folder, reference)
        summary = markdown_summary(doc, [p.name for p in charts])
        write_atomic(folder / "summary.md", summary)
    except OSError as exc:
        raise DocumentError(f"cannot write the report to {folder}: {exc.strerror or exc}; "
                            f"choose a writable folder (pytest: --specgate-reports DIR; specgate report/merge: --out DIR)") from exc
    return summary, written + charts + [folder / "summary.md"]


def append_step_summary(summary: str) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY when GitHub Actions set it (the job's summary page)."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as f:
        f.write(summary)
    return Path(target)


def write_outputs(doc: dict, options) -> tuple[bool, list[tuple[str, bool]], str]:
    """Every output ``options`` (options.Options) asks for -> (all written, (line, is_error)
    messages, the Markdown summary). One that fails is reported and the others are still written."""
    summary, ok, messages, outputs = markdown_summary(doc), True, [], []
    if options.reports is not None:
        def report():
            nonlocal summary
            summary, written = write_report(doc, options.reports)
            return (f"report ({len(written)} files: results.json, {len(written) - 2} charts, summary.md) "
                    f"written to {options.reports}")
        outputs.append(("report", report))
    if options.results is not None:
        outputs.append(("results", lambda: write(options.results, doc) or f"results written to {options.results}"))
    if options.github_benchmark is not None:
        outputs.append(("github-action-benchmark files", lambda: _write_github(doc, options.github_benchmark)))
    outputs.append(("step summary", lambda: (lambda p: p and f"summary appended to {p}")(append_step_summary(summary))))
    for what, write_one in outputs:
        try:
            said = write_one()
        except (DocumentError, OSError) as exc:
            reason = str(exc) if isinstance(exc, DocumentError) else (exc.strerror or str(exc))
            messages.append((f"{what} NOT written: {reason}", True))
            ok = False
            continue
        if said:
            messages.append((said, False))
    return ok, messages, summary


def _write_github(doc: dict, folder: Path) -> str:
    from specgate.report.export import github_benchmark

    for name, entries in github_benchmark(doc).items():
        write_atomic(folder / name, json.dumps(entries, indent=1) + "\n")
    return f"github-action-benchmark files written to {folder}"


def terminal(reporter, doc: dict, messages: list[tuple[str, bool]]) -> None:
    """The verdict table (at most 100 columns; the full Markdown is in summary.md), then the messages."""
    reporter.write_sep("=", "specgate verdicts")
    reporter.write_line(terminal_table(doc))
    for line, is_error in messages:
        text = line if line.startswith("specgate:") else f"specgate: {line}"
        # Paths are never broken (they are copied from here); everything else wraps at 100 columns.
        for part in textwrap.wrap(text, TERMINAL_WIDTH, subsequent_indent="    ", break_on_hyphens=False,
                                  break_long_words=False):
            reporter.write_line(part, red=is_error)


def say(config, message: str) -> None:
    """A progress line for long runs, shown even while pytest captures the test's output."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or config.get_verbosity() < -1:  # -q keeps progress; -qq silences it
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(message if message.startswith("specgate:") else f"specgate: {message}")
