"""Write a run's report folder: results.json, the charts, summary.md; and the CI step summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .baselines import BaselineError, write_atomic
from .report import markdown_summary


def write_report(doc: dict, folder: Path, with_results: bool = True,
                 reference: dict | None = None) -> tuple[str, list[Path]]:
    """-> (Markdown summary, files written). Charts need matplotlib (a specgate dependency)."""
    from .charts import write_charts

    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / "results.json"] if with_results else []
        if with_results:
            write_atomic(folder / "results.json", json.dumps(doc, indent=1) + "\n")
        charts = write_charts(doc, folder, reference)
        summary = markdown_summary(doc, [p.name for p in charts])
        write_atomic(folder / "summary.md", summary)
    except OSError as exc:
        raise BaselineError(f"cannot write the report to {folder}: {exc.strerror or exc}; "
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
