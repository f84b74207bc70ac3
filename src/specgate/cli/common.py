"""What every subcommand shares: its errors, the exit status of a judged run, the help texts."""

from __future__ import annotations

import json
import sys

from specgate.core.outcomes import Outcome
from specgate.gate.verdict import JUDGED


class UsageError(ValueError):
    """The command line asks for something that cannot be done (exit 2)."""


JSON_HELP = "print one JSON document on stdout instead of the tables (messages stay on stderr)"
RESULTS_HELP = "a results file (--specgate-results, or reports/results.json of a run)"
REFERENCE_HELP = ("draw these published figures dotted beside the run (origin-h100: the origin benchmark's "
                  "vLLM v0 figures on an H100; for shape, not a gate)")
ALLOW_MISSING_HELP = "exit 0 even when some conditions had no comparable baseline (never when none had)"


def reference(args) -> dict | None:
    """The published figures named by --reference, or None."""
    if args.reference == "origin-h100":
        from specgate.report.origin import origin_reference

        return origin_reference()
    return None


def exit_status(statuses: dict[str, str | None], allow_missing: bool, against: str = "",
                errors: dict[str, int] | None = None) -> int:
    """The outcome class (core/outcomes.py) of judged runs: a regression (also a condition whose
    engine failed after preflight); else a condition that could not run (``errors``: condition ->
    its outcome, from the results' "error" verdicts); else conditions not judged (unless allowed;
    never allowed when nothing was judged). One line says how many were judged."""
    errors = errors or {}
    failed = [cid for cid, s in statuses.items() if s == "fail" or errors.get(cid) == Outcome.REGRESSION]
    broken = [cid for cid in errors if errors[cid] == Outcome.SETUP]
    missing = [cid for cid, s in statuses.items() if s not in JUDGED and cid not in errors]
    print(f"specgate: {len(statuses) - len(missing) - len(errors)} of {len(statuses)} conditions judged"
          + (f" against {against}" if against else "") + (f"; {len(errors)} errored" if errors else ""),
          file=sys.stderr)
    if failed:
        print(f"specgate: regressions in {', '.join(failed)}", file=sys.stderr)
        return Outcome.REGRESSION
    if broken:
        print(f"specgate: could not run: {', '.join(broken)}", file=sys.stderr)
        return Outcome.SETUP
    if len(missing) == len(statuses):
        print("specgate: nothing was judged: no condition had a comparable baseline", file=sys.stderr)
        return Outcome.NOT_JUDGED
    if missing and not allow_missing:
        print(f"specgate: not judged (no comparable baseline): {', '.join(missing)}; pass --allow-missing to "
              f"accept that", file=sys.stderr)
        return Outcome.NOT_JUDGED
    return Outcome.PASS


def errors_of(doc: dict) -> dict[str, int]:
    """The conditions of a results document whose test errored before a verdict -> outcome class."""
    return {cid: int(v.get("outcome", Outcome.REGRESSION)) for cid, e in doc["runs"].items()
            if (v := e.get("verdict") or {}).get("status") == "error"}


def print_json(doc: dict) -> None:
    """The machine-readable output of --json: one document on stdout."""
    print(json.dumps(doc, indent=2, sort_keys=False, default=str))


def judged_json(verdicts: dict[str, dict], status: int, against: str = "") -> dict:
    """compare's and merge's --json document: how many judged, the exit status, each verdict."""
    return {"judged": sum((v or {}).get("status") in JUDGED for v in verdicts.values()), "conditions": len(verdicts),
            **({"against": against} if against else {}), "exit_status": int(status), "verdicts": verdicts}
