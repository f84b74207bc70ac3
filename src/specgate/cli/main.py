"""The `specgate` command: check pairings files, show and compare saved runs, manage baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specgate import __version__
from specgate.matrix import config
from specgate.matrix import preflight
from specgate.gate import saved_runs as compare
from specgate.records.baselines import BaselineError, BaselineStore
from specgate.records.document import DocumentError, load as load_results
from specgate.records.merge import MergeError, merge
from specgate.report.publish import append_step_summary, write_report
from specgate.report.tables import markdown_table, stage_table, text_table
from specgate.gate.verdict import JUDGED
from specgate.gate.verdict import DEFAULT_TOLERANCES


def _validate(args) -> int:
    """The pairings file, then (unless --config-only) every check that needs no engine."""
    matrix = config.load(args.pairings)
    conditions = matrix.conditions()
    print(f"{args.pairings}: {len(matrix.pairings)} pairings, {len(conditions)} conditions")
    for c in conditions:
        print(f"  {c.id}")
    if args.config_only:
        return 0
    # Controls share their pairings' targets and prompts: checking the pairings covers them.
    # Pairings with the same problem (e.g. one missing target) are reported on one line.
    problems: dict[str, list[str]] = {}
    for p in matrix.pairings:
        try:
            preflight.check(p)
        except preflight.PreflightError as exc:
            problems.setdefault(exc.reason, []).append(p.name)
    for reason, names in problems.items():
        which = f"pairing {names[0]!r}" if len(names) == 1 else f"pairings {', '.join(map(repr, names))}"
        print(f"specgate: error: {which}: {reason}", file=sys.stderr)
    if problems:
        return 2
    print("preflight ok: models found, draft vocabularies match, head sizes supported, prompts load and fit")
    return 0


def _table(args) -> int:
    doc = load_results(args.results)
    rows = [(cid, entry["metrics"]) for cid, entry in doc["runs"].items()]
    print(markdown_table(rows) if args.markdown else text_table(rows))
    stages = stage_table(rows, markdown=args.markdown)
    if stages:
        print("\n" + stages)
    return 0


def _reference(args) -> dict | None:
    if args.reference == "origin-h100":
        from specgate.report.origin import origin_reference

        return origin_reference()
    return None


def _merge(args) -> int:
    """Shard results -> one results file, report and step summary; exit 1 on any regression."""
    try:
        merged = merge([(str(path), load_results(path)) for path in args.results])
    except MergeError as exc:
        raise BaselineError(str(exc)) from None
    summary, _ = write_report(merged, args.out, reference=_reference(args))
    append_step_summary(summary)
    print(summary)
    print(f"specgate: {len(args.results)} shards, {len(merged['runs'])} runs merged into {args.out / 'results.json'}")
    statuses = {cid: (e.get("verdict") or {}).get("status") for cid, e in merged["runs"].items()}
    return _exit_status(statuses, args.allow_missing)


def _exit_status(statuses: dict[str, str | None], allow_missing: bool) -> int:
    """1 on any regression; also 1 when a condition was not judged (unless allowed) or nothing was."""
    failed = [cid for cid, s in statuses.items() if s == "fail"]
    missing = [cid for cid, s in statuses.items() if s not in JUDGED]
    if failed:
        print(f"specgate: regressions in {', '.join(failed)}", file=sys.stderr)
        return 1
    if len(missing) == len(statuses):
        print("specgate: nothing was judged: no condition had a comparable baseline", file=sys.stderr)
        return 1
    if missing and not allow_missing:
        print(f"specgate: not judged (no comparable baseline): {', '.join(missing)}; pass --allow-missing to "
              f"accept that", file=sys.stderr)
        return 1
    return 0


def _report(args) -> int:
    doc = load_results(args.results)
    summary, written = write_report(doc, args.out, with_results=False, reference=_reference(args))
    print(summary)
    print(f"specgate: {len(written)} files written to {args.out}: {', '.join(p.name for p in written)}")
    return 0


def _baseline_update(args) -> int:
    doc = load_results(args.results)
    env = {**doc["environment"], **({"hardware": args.hardware_tag} if args.hardware_tag else {})}
    chosen = {cid: e for cid, e in doc["runs"].items() if not args.only or cid in args.only}
    missing = set(args.only or ()) - set(chosen)
    if missing:
        raise BaselineError(f"{args.results}: no runs {sorted(missing)}; it has {', '.join(doc['runs'])}")
    portable, timing = compare.records(doc, env)
    written = BaselineStore(args.baselines, env["hardware"]).save(
        {cid: portable[cid] for cid in chosen}, {cid: timing[cid] for cid in chosen})
    print(f"{len(chosen)} baseline records written to {' and '.join(map(str, written))}")
    return 0


def _baseline_migrate(args) -> int:
    from specgate.records.migrate import migrate

    for line in migrate(args.baselines, args.pairings):
        print(line)
    return 0


def _compare(args) -> int:
    """NEW against --base (a results file) or against the baseline folder."""
    if args.old_base is not None:
        if args.base is not None:
            raise BaselineError("give the base once: `specgate compare NEW --base BASE`")
        print("specgate: warning: `specgate compare NEW BASE` is deprecated (its order reads backwards); "
              "use `specgate compare NEW --base BASE`", file=sys.stderr)
        args.base = args.old_base
    new = load_results(args.new)
    hardware = new["environment"]["hardware"]
    files = (compare.files_from_results(load_results(args.base), args.base, hardware) if args.base is not None
             else compare.files_from_folder(args.baselines, hardware))
    verdicts = compare.judge_runs(new, files, lambda entry: _tolerances(args, entry))
    print(text_table([(cid, e["metrics"]) for cid, e in new["runs"].items()], {c: v.status for c, v in verdicts.items()}))
    print("\n".join(f"{cid}: {v.status}: {v.reason}" + "".join(f"\n    {n}" for n in v.notes)
                    for cid, v in verdicts.items()))
    return _exit_status({c: v.status for c, v in verdicts.items()}, args.allow_missing)


def _ab(args) -> int:
    """The same matrix under two Python environments (two vLLM installs); B judged against A."""
    from specgate.cli.ab import run_ab

    statuses = run_ab(args.python_a, args.python_b, args.out, args.pytest_args)
    return _exit_status(statuses, allow_missing=False)


def _tolerances(args, entry) -> dict:
    """The pairing's tolerances as recorded in the results file, overridden by the command line."""
    given = {"acceptance_rate": args.acceptance_tolerance, "latency": args.latency_tolerance}
    return {**entry.get("tolerances", {}), **{k: v for k, v in given.items() if v is not None}}


RESULTS_HELP = "a results file (--specgate-results, or reports/results.json of a run)"
REFERENCE_HELP = ("draw these published figures dotted beside the run (origin-h100: the origin benchmark's "
                  "vLLM v0 figures on an H100; for shape, not a gate)")


EXIT_CODES = """exit status:
  0  pass: everything judged was within tolerance
  1  a regression; for compare, merge and ab also a condition not judged (no comparable baseline)
     unless --allow-missing, and always when nothing was judged
  2  an error in the input (pairings file, results or baseline file, command line)

The benchmarks themselves run under pytest: `make bench` (docs: README.md)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specgate", description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"specgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    v = sub.add_parser("validate", help="check a pairings file, its models and prompts (no engine); list conditions")
    v.add_argument("pairings", type=Path, help="pairings file (TOML), e.g. configs/cpu.toml")
    v.add_argument("--config-only", action="store_true", help="check the file alone, not its models and prompts")
    v.set_defaults(func=_validate)
    t = sub.add_parser("table", help="print the metrics table of a --specgate-results file")
    t.add_argument("results", type=Path, help=RESULTS_HELP)
    t.add_argument("--markdown", action="store_true", help="Markdown instead of fixed-width text")
    t.set_defaults(func=_table)
    r = sub.add_parser("report", help="charts (PNG) and a Markdown summary of a --specgate-results file")
    r.add_argument("results", type=Path, help=RESULTS_HELP)
    r.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    r.add_argument("--reference", choices=["origin-h100"], help=REFERENCE_HELP)
    r.set_defaults(func=_report)
    m = sub.add_parser("merge", help="merge the results files of --specgate-shard runs into one run's report")
    m.add_argument("results", type=Path, nargs="+", help="the shards' results files (--specgate-results)")
    m.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default: reports)")
    m.add_argument("--reference", choices=["origin-h100"], help=REFERENCE_HELP)
    m.add_argument("--allow-missing", action="store_true",
                   help="exit 0 even when some conditions had no comparable baseline (never when none had)")
    m.set_defaults(func=_merge)
    b = sub.add_parser("baseline", help="manage baseline records")
    bsub = b.add_subparsers(dest="baseline_command", required=True)
    u = bsub.add_parser("update", help="write the runs of a results file as baselines (atomically)")
    u.add_argument("results", type=Path, help=RESULTS_HELP)
    u.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    u.add_argument("--hardware-tag", help="override the results file's hardware tag")
    u.add_argument("--only", action="append", metavar="CONDITION", help="only this condition id (repeatable)")
    u.set_defaults(func=_baseline_update)
    g = bsub.add_parser("migrate", help="convert schema-1 baseline files (one per hardware tag and vLLM version) "
                                        "into portable and timing records, without re-measuring")
    g.add_argument("baselines", type=Path, help="baseline folder holding the schema-1 files")
    g.add_argument("pairings", type=Path, help="the pairings file the records were measured from (for model paths)")
    g.set_defaults(func=_baseline_migrate)
    c = sub.add_parser("compare", help="judge a results file against another one or against the baselines")
    c.add_argument("new", type=Path, help="the results file to judge (--specgate-results of the new run)")
    c.add_argument("--base", type=Path, metavar="BASE",
                   help="results file to judge it against (e.g. the run before an upgrade); default: the baseline folder")
    c.add_argument("old_base", type=Path, nargs="?", metavar="BASE", help=argparse.SUPPRESS)
    c.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    c.add_argument("--allow-missing", action="store_true",
                   help="exit 0 even when some conditions had no comparable baseline (never when none had)")
    c.add_argument("--acceptance-tolerance", type=float, metavar="REL",
                   help=f"relative acceptance drop allowed (default: the pairing's, else "
                        f"{DEFAULT_TOLERANCES['acceptance_rate']})")
    c.add_argument("--latency-tolerance", type=float, metavar="REL",
                   help=f"relative latency rise allowed (default: the pairing's, else {DEFAULT_TOLERANCES['latency']})")
    c.set_defaults(func=_compare)
    ab = sub.add_parser("ab", help="run the benchmarks under two Python environments (e.g. two vLLM versions) and "
                                   "judge B against A: one report, the version delta on every line")
    ab.add_argument("python_a", type=Path, help="the Python of environment A (the old vLLM), e.g. .venv-0.31.0/bin/python")
    ab.add_argument("python_b", type=Path, help="the Python of environment B (the new vLLM), e.g. .venv/bin/python")
    ab.add_argument("--out", type=Path, default=Path("reports/ab"),
                    help="output folder (default: reports/ab); arguments after -- go to both pytest runs")
    ab.set_defaults(func=_ab, pytest_args=[])  # after --: arguments for both pytest runs
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = build_parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if rest and args.command != "ab":
        print("specgate: error: only 'specgate ab' takes arguments after --", file=sys.stderr)
        return 2
    if rest:
        args.pytest_args = rest
    try:
        return args.func(args)
    except (config.ConfigError, DocumentError) as exc:
        print(f"specgate: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
