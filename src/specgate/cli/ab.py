"""`specgate ab`: one matrix under two Python environments (two vLLM installs), B judged against A.

Both sides run the benchmarks in their own interpreter, one after the other, writing results
files; B is then judged against A like `specgate compare`: acceptance and tokens always, timing
as the ratio to each side's own paired control, so the two runs' machine states cancel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from specgate.cli.common import UsageError, exit_status
from specgate.gate.saved_runs import judge_runs
from specgate.records.document import read_json, write_atomic
from specgate.records.from_results import files_from_results
from specgate.report.tables import markdown_table, source_lines


def add(sub) -> None:
    ab = sub.add_parser("ab", help="run the benchmarks under two Python environments (e.g. two vLLM versions) and "
                                   "judge B against A: one report, the version delta on every line")
    ab.add_argument("python_a", type=Path, help="the Python of environment A (the old vLLM), e.g. .venv-0.31.0/bin/python")
    ab.add_argument("python_b", type=Path, help="the Python of environment B (the new vLLM), e.g. .venv/bin/python")
    ab.add_argument("--out", type=Path, default=Path("reports/ab"),
                    help="output folder (default: reports/ab); arguments after -- go to both pytest runs")
    ab.set_defaults(func=run, pytest_args=[])  # after --: arguments for both pytest runs


def run(args) -> int:
    return exit_status(run_ab(args.python_a, args.python_b, args.out, args.pytest_args), allow_missing=False)


def _run(python: Path, results: Path, pytest_args: list[str]) -> dict:
    if not python.exists():
        raise UsageError(f"{python}: no such interpreter; create that environment first (make ab does)")
    argv = [str(python), "-m", "pytest", "benchmarks", "-q", "-p", "no:cacheprovider", "--specgate-no-reports",
            "--specgate-results", str(results), *pytest_args]
    print(f"specgate ab: {' '.join(argv)}", flush=True)
    subprocess.run(argv, check=False)  # its own verdicts against baselines/ do not matter here
    if not results.exists():
        raise UsageError(f"{python}: the benchmark run wrote no results ({results}); see its output above")
    return read_json(results, "results file")


def run_ab(python_a: Path, python_b: Path, out: Path, pytest_args: list[str]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    a = _run(python_a, out / "a.json", pytest_args)
    b = _run(python_b, out / "b.json", pytest_args)
    verdicts = judge_runs(b, files_from_results(a, out / "a.json", b["environment"]["hardware"]),
                                  lambda entry: entry.get("tolerances", {}))
    va, vb = a["environment"].get("vllm"), b["environment"].get("vllm")
    lines = [f"# specgate ab: vLLM {va} (A) -> {vb} (B)", "",
             "| condition | acceptance A | acceptance B | speedup A | speedup B | verdict | reason |",
             "|---|---|---|---|---|---|---|"]
    fmt = lambda x: "-" if x is None else f"{x:.3f}"
    for cid, v in verdicts.items():
        ma, mb = a["runs"].get(cid, {}).get("metrics", {}), b["runs"][cid]["metrics"]
        lines.append(f"| {cid} | {fmt(ma.get('acceptance_rate'))} | {fmt(mb.get('acceptance_rate'))} | "
                     f"{fmt(ma.get('speedup'))} | {fmt(mb.get('speedup'))} | {v.status} | {v.reason} |")
    # Where A's numbers came from, in the words `specgate compare` uses (A is B's record here).
    lines += ["", *source_lines({cid: list(v.sources) for cid, v in verdicts.items()}, b["environment"]),
              "", markdown_table([(cid, b["runs"][cid]["metrics"]) for cid in verdicts],
                                 {c: v.status for c, v in verdicts.items()})]
    summary = "\n".join(lines) + "\n"
    write_atomic(out / "summary.md", summary)
    print(summary)
    print(f"specgate ab: results in {out / 'a.json'} and {out / 'b.json'}, summary in {out / 'summary.md'}",
          file=sys.stderr)
    return {c: v.status for c, v in verdicts.items()}
