"""The figures README.md and docs/baselines.md show, tied to the records `make bench` judges against,
so that they cannot drift from what the current code measures (tests/product/test_readme.py runs
--check in `make test`; a strict `make bench` in turn proves that the current code reproduces the
records: acceptance exactly at temperature 0, latency within its tolerance).

  .venv/bin/python scripts/readme_figures.py --check
      every figure matches baselines/: the docs table is what the records say, and each row of
      README's terminal excerpt has the records' acceptance (to its 3 decimals) and a speedup within
      SPEEDUP_DRIFT of the timing records'
  .venv/bin/python scripts/readme_figures.py --write
      rewrite the docs table (acceptance, mean acceptance length, per-position acceptance and
      paired speedup per pairing x k) from baselines/
  .venv/bin/python scripts/readme_figures.py --excerpt reports/results.json --seconds 470
      rewrite README's terminal excerpt from that `make bench` run (its rows, commit, date, time)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs" / "baselines.md"
BASELINES = ROOT / "baselines"
HARDWARE = "cpu-amd-epyc-avx512-2c"  # the machine the shipped timing records were measured on
# Two runs of one build on a shared 2-core machine moved a condition's speedup by up to 10%
# (docs/baselines.md): beyond that, the excerpt no longer shows what the records say.
SPEEDUP_DRIFT = 0.15
TABLE = ("<!-- figures: scripts/readme_figures.py --write -->", "<!-- /figures -->")
EXCERPT = ("<!-- excerpt: scripts/readme_figures.py --excerpt RESULTS -->", "<!-- /excerpt -->")
# The conditions README's excerpt shows: one or two per method, and the kinds of feature verdict.
EXCERPT_ROWS = ("fixture-nospec", "fixture-aligned-draft_model-k3", "fixture-aligned-draft_model-k8",
                "fixture-misaligned-draft_model-k1-batch", "fixture-ngram-k5", "fixture-e3-eagle3-k3",
                "fixture-e1-eagle-k3", "fixture-heads-medusa-k1", "fixture-mimo-mtp-k5", "fixture-arctic-suffix-k3",
                "fixture-aligned-draft_model-k8+prefix-caching", "fixture-aligned-draft_model-k8+seeds",
                "fixture-aligned-draft_model-k8+n2", "fixture-aligned-draft_model-k8+arrivals",
                "fixture-aligned-draft_model-k8+boundaries", "fixture-aligned-draft_model-k8+eos",
                "fixture-heads-medusa-k5+speculation-schedule", "fixture-mimo-mtp-k5+boundaries")


def records(kind: str) -> dict:
    path = BASELINES / ("portable.json" if kind == "portable" else f"timing/{HARDWARE}.json")
    return json.loads(path.read_text(encoding="utf-8"))["records"]


def cpu_default_ids() -> set[str]:
    """The condition ids of configs/cpu.toml (the records also hold conditions it no longer has)."""
    sys.path.insert(0, str(ROOT / "src"))
    from specgate.matrix import config

    return {c.id for c in config.load(ROOT / "configs" / "cpu.toml").conditions()}


def figures_table(portable: dict, timing: dict) -> str:
    """Markdown: one row per speculative condition of the CPU default (no feature cells)."""
    rows, sources, current = [], set(), cpu_default_ids()
    for cid, rec in portable.items():
        facts = rec["conditions"]
        if cid not in current or facts.get("method") in (None, "none") or facts.get("feature") or "metrics" not in rec:
            continue
        m, t = rec["metrics"], (timing.get(cid) or {}).get("metrics") or {}
        sources.add((rec["recorded"].get("commit", "?")[:7], str(rec["recorded"].get("date", "?"))[:10]))
        per_pos = " ".join(f"{x:.2f}" for x in m.get("per_position_acceptance") or [])
        speedup = f"{t['speedup']:.2f}" if t.get("speedup") is not None else "-"
        rows.append(f"| {facts['pairing']} | {facts['method']} | {facts['k']} | {facts['mode']} | "
                    f"{m['acceptance_rate']:.3f} | {m['mean_acceptance_length']:.2f} | {per_pos} | {speedup} |")
    made = ", ".join(f"{commit} ({date})" for commit, date in sorted(sources, key=lambda s: (s[1], s[0])))
    return "\n".join([
        f"Recorded at commit(s) {made}; speedup: the no-speculation control's latency over this one's, timed",
        f"beside each request, on {HARDWARE} (batch cells: against a control run before them).", "",
        "| pairing | method | k | mode | acceptance rate | mean acceptance length | per-position acceptance | speedup |",
        "|---|---|---|---|---|---|---|---|", *rows])


def between(text: str, markers: tuple[str, str]) -> tuple[int, int]:
    start, end = text.find(markers[0]), text.find(markers[1])
    if start < 0 or end < start:
        raise SystemExit(f"readme_figures: markers {markers} not found in order")
    return start + len(markers[0]), end


def replaced(text: str, markers: tuple[str, str], body: str) -> str:
    start, end = between(text, markers)
    return text[:start] + "\n" + body + "\n" + text[end:]


def excerpt(doc: dict, seconds: float) -> str:
    """README's excerpt from a make bench run's results: the header line and EXCERPT_ROWS of its
    terminal table, and its judged lines."""
    sys.path.insert(0, str(ROOT / "src"))
    from specgate.gate.verdict import Verdict
    from specgate.report.tables import judged_lines, terminal_table

    env = doc["environment"]
    table = terminal_table(doc).splitlines()
    kept = table[:2] + [line for line in table[2:] if line.split()[0] in EXCERPT_ROWS]
    verdicts = {cid: Verdict(v.get("status"), v.get("reason", ""), notes=tuple(v.get("notes") or ()))
                for cid, v in ((cid, e.get("verdict") or {}) for cid, e in doc["runs"].items())}
    features = {cid for cid, e in doc["runs"].items() if e["conditions"].get("feature")}
    judged = [f"specgate: {line}" for line, _ in judged_lines(verdicts, features, env, True)[:2]]
    return "\n".join([
        f"Excerpt from the `make bench` of commit {str(env.get('commit'))[:7]} ({str(env.get('date'))[:10]}, "
        f"{seconds:.0f} s; speedups below 1 are real: the fixture target is as cheap as a draft step):", "",
        "```", *kept, *judged, "```"])


def excerpt_problems(readme: str, portable: dict, timing: dict) -> list[str]:
    """Rows of README's excerpt whose figures the records no longer hold."""
    start, end = between(readme, EXCERPT)
    problems = []
    for line in readme[start:end].splitlines():
        cells = line.split()
        if not cells or cells[0] not in EXCERPT_ROWS:
            continue
        cid, numbers = cells[0], re.findall(r"(?<![+\-\d.])\d+\.\d{3}\b", line)
        accept = ((portable.get(cid) or {}).get("metrics") or {}).get("acceptance_rate")
        if accept is None or "+" in cid:
            continue  # a control, or a feature cell (its figures are checks, not a sweep's points)
        if not numbers or numbers[0] != f"{accept:.3f}":
            problems.append(f"{cid}: README shows acceptance {numbers[:1]}, the records {accept:.3f}")
        speedup = ((timing.get(cid) or {}).get("metrics") or {}).get("speedup")
        # Only paired (sequential) speedups: a batch cell's is against a control run minutes before it.
        if speedup is not None and not cid.endswith("-batch") and (
                len(numbers) < 2 or abs(float(numbers[1]) / speedup - 1) > SPEEDUP_DRIFT):
            problems.append(f"{cid}: README shows speedup {numbers[1:2]}, the records {speedup:.3f} "
                            f"(more than {SPEEDUP_DRIFT:.0%} apart)")
    return problems


def check() -> list[str]:
    portable, timing = records("portable"), records("timing")
    problems = []
    docs = DOCS.read_text(encoding="utf-8")
    if replaced(docs, TABLE, figures_table(portable, timing)) != docs:
        problems.append("docs/baselines.md's figures table differs from baselines/: run "
                        "`.venv/bin/python scripts/readme_figures.py --write`")
    problems += [f"README.md's excerpt: {p}; rerun `make bench` and `.venv/bin/python scripts/readme_figures.py "
                 f"--excerpt reports/results.json --seconds S`" for p in excerpt_problems(
                     README.read_text(encoding="utf-8"), portable, timing)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--excerpt", type=Path, metavar="RESULTS")
    parser.add_argument("--seconds", type=float, help="the run's pytest time, for the excerpt's header")
    args = parser.parse_args(argv)
    if args.write:
        DOCS.write_text(replaced(DOCS.read_text(encoding="utf-8"), TABLE,
                                 figures_table(records("portable"), records("timing"))), encoding="utf-8")
    if args.excerpt:
        if args.seconds is None:
            parser.error("--excerpt needs --seconds (the run's pytest time)")
        doc = json.loads(args.excerpt.read_text(encoding="utf-8"))
        README.write_text(replaced(README.read_text(encoding="utf-8"), EXCERPT, excerpt(doc, args.seconds)),
                          encoding="utf-8")
    if args.check:
        problems = check()
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
