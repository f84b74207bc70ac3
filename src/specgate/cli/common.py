"""What every subcommand shares: its errors, the exit status of a judged run, the help texts."""

from __future__ import annotations

import sys

from specgate.gate.verdict import JUDGED


class UsageError(ValueError):
    """The command line asks for something that cannot be done (exit 2)."""


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


def exit_status(statuses: dict[str, str | None], allow_missing: bool) -> int:
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
