"""`specgate validate`: a pairings file, then every check that needs no engine; lists the conditions."""

from __future__ import annotations

import sys
from pathlib import Path

from specgate.cli.common import JSON_HELP, print_json
from specgate.core.outcomes import Outcome
from specgate.matrix import config, preflight


def add(sub) -> None:
    v = sub.add_parser("validate", help="check a pairings file, its models and prompts (no engine); list conditions")
    v.add_argument("pairings", type=Path, help="pairings file (TOML), e.g. configs/cpu.toml")
    v.add_argument("--config-only", action="store_true", help="check the file alone, not its models and prompts")
    v.add_argument("--json", action="store_true", help=JSON_HELP)
    v.set_defaults(func=run)


def run(args) -> int:
    matrix = config.load(args.pairings)
    conditions = matrix.conditions()
    if not args.json:
        print(f"{args.pairings}: {len(matrix.pairings)} pairings, {len(conditions)} conditions")
        for c in conditions:
            print(f"  {c.id}")
    # Controls share their pairings' targets and prompts: checking the pairings covers them.
    # Pairings with the same problem (e.g. one missing target) are reported on one line.
    problems: dict[str, list[str]] = {}
    for p in [] if args.config_only else matrix.pairings:
        try:
            preflight.check(p)
        except preflight.PreflightError as exc:
            problems.setdefault(exc.reason, []).append(p.name)
    for reason, names in problems.items():
        which = f"pairing {names[0]!r}" if len(names) == 1 else f"pairings {', '.join(map(repr, names))}"
        print(f"specgate: error: {which}: {reason}", file=sys.stderr)
    status = Outcome.USAGE if problems else Outcome.PASS
    if args.json:
        print_json({"pairings": [p.name for p in matrix.pairings], "conditions": [c.id for c in conditions],
                    "checked": not args.config_only, "exit_status": int(status),
                    "problems": [{"pairings": names, "reason": reason} for reason, names in problems.items()]})
    elif not (problems or args.config_only):
        print("preflight ok: vLLM takes every argument and method, models found, draft vocabularies match, head "
              "sizes supported, prompts load and fit")
    return status
