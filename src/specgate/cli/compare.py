"""`specgate compare NEW [--base BASE]`: a saved run judged against another saved run or against
the baseline folder; exit 1 on a regression."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specgate.cli.common import (ALLOW_MISSING_HELP, JSON_HELP, UsageError, errors_of, exit_status, judged_json,
                                 print_json)
from specgate.core.tolerances import DEFAULTS
from specgate.gate.saved_runs import judge_runs
from specgate.records.document import load as load_results
from specgate.records.document import verdict_dict
from specgate.records.from_results import files_from_folder, files_from_results
from specgate.report.tables import source_lines, text_table


def add(sub) -> None:
    c = sub.add_parser("compare", help="judge a results file against another one or against the baselines")
    c.add_argument("new", type=Path, help="the results file to judge (--specgate-results of the new run)")
    c.add_argument("--base", type=Path, metavar="BASE",
                   help="results file to judge it against (e.g. the run before an upgrade); default: the baseline folder")
    c.add_argument("old_base", type=Path, nargs="?", metavar="BASE", help=argparse.SUPPRESS)
    c.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    c.add_argument("--allow-missing", action="store_true", help=ALLOW_MISSING_HELP)
    c.add_argument("--json", action="store_true", help=JSON_HELP)
    c.add_argument("--acceptance-tolerance", type=float, metavar="REL",
                   help=f"relative acceptance drop allowed (default: the pairing's, else "
                        f"{DEFAULTS['acceptance_rate']})")
    c.add_argument("--latency-tolerance", type=float, metavar="REL",
                   help=f"relative latency rise allowed (default: the pairing's, else {DEFAULTS['latency']})")
    c.set_defaults(func=run)


def run(args) -> int:
    if args.old_base is not None:
        if args.base is not None:
            raise UsageError("give the base once: `specgate compare NEW --base BASE`")
        print("specgate: warning: `specgate compare NEW BASE` is deprecated (its order reads backwards); "
              "use `specgate compare NEW --base BASE`", file=sys.stderr)
        args.base = args.old_base
    new = load_results(args.new)
    hardware = new["environment"]["hardware"]
    files = (files_from_results(load_results(args.base), args.base, hardware) if args.base is not None
             else files_from_folder(args.baselines, hardware))
    verdicts = judge_runs(new, files, lambda entry: tolerances(args, entry))
    against = f"--base {args.base}" if args.base is not None else f"the baselines in {args.baselines}"
    if not args.json:
        print(text_table([(cid, e["metrics"]) for cid, e in new["runs"].items()],
                         {c: v.status for c, v in verdicts.items()}))
        print("\n".join(f"{cid}: {v.status}: {v.reason}" + "".join(f"\n    {n}" for n in v.notes)
                        for cid, v in verdicts.items()))
        print("\n".join(source_lines({cid: list(v.sources) for cid, v in verdicts.items()}, new["environment"])))
    status = exit_status({c: v.status for c, v in verdicts.items()}, args.allow_missing, against, errors_of(new))
    if args.json:
        print_json(judged_json({cid: verdict_dict(v) for cid, v in verdicts.items()}, status, against))
    return status


def tolerances(args, entry) -> dict:
    """The pairing's tolerances as recorded in the results file, overridden by the command line."""
    given = {"acceptance_rate": args.acceptance_tolerance, "latency": args.latency_tolerance}
    return {**entry.get("tolerances", {}), **{k: v for k, v in given.items() if v is not None}}
