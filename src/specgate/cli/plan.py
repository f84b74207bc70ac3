"""`specgate plan`: a pairings file -> the GPU time of each shard, its runner label by size, and
the plan file that `--specgate-plan` runs the shards from (records/plan.py, matrix/cost.py)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from specgate.cli.common import JSON_HELP, UsageError, print_json
from specgate.core.outcomes import Outcome
from specgate.matrix import config, cost
from specgate.records import plan

HELP = textwrap.fill(" ".join(f"""Each condition's seconds come from a timing record of the named hardware (--hardware: its
one-round wall time, plus the control timed beside each request when paired, scaled by the prompts,
new tokens and rounds configured now), else from a stated model: decode is memory-bound, each step
reads the target's weights once at {cost.BANDWIDTH:.3g} B/s per GPU (--bandwidth; an H100 SXM) x
{cost.EFFICIENCY} efficiency; sequential runs take rounds x prompts x new tokens steps, batch runs
rounds x new tokens, serving at concurrency c rounds x ceil(prompts / c) x new tokens; a speculative
condition costs what its control does (speedup 1), twice with paired_control; bytes per parameter:
float32 4, bfloat16 / float16 / auto 2, fp8 1, bitsandbytes / awq / gptq 0.5; parameters from a local
target's config.json or a size in its name ("70B"); plus {cost.ENGINE_BUILD_S:.0f} s per engine.
GPUs of a pairing: tensor_parallel_size x pipeline_parallel_size of its engine table. Each pairing
goes to the smallest runner label with that many GPUs; each label in use gets a shard, the rest go
to the labels with the most time, and a label's pairings fill its shards longest first.""".split()), 100)


def add(sub) -> None:
    p = sub.add_parser("plan", help="estimate each shard's GPU time and assign pairings to runner labels by size",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairings", type=Path, help="pairings file (TOML), e.g. configs/gpu.toml")
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="shards in all (default 1; raised to one per runner label in use)")
    p.add_argument("--runners", metavar="JSON", default=None,
                   help="runs-on labels by GPU count, e.g. '{\"1\": [\"self-hosted\", \"linux\", \"gpu\"], \"4\": "
                        "[\"self-hosted\", \"linux\", \"gpu-4x\"]}', or one JSON list for every pairing (default "
                        "'[\"self-hosted\", \"linux\", \"gpu\"]')")
    p.add_argument("--hardware", action="append", default=[], metavar="TAG",
                   help="estimate from the timing records of this hardware tag (baselines/timing/TAG.json; "
                        "repeatable, the first with a record wins); without it, the model")
    p.add_argument("--baselines", type=Path, default=Path("baselines"), help="baseline folder (default: baselines)")
    p.add_argument("--bandwidth", type=float, default=cost.BANDWIDTH, metavar="BYTES_PER_S",
                   help=f"one GPU's memory bandwidth for the model (default {cost.BANDWIDTH:.3g}, an H100 SXM)")
    p.add_argument("--out", type=Path, help="write the plan (JSON) here, atomically, for --specgate-plan")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.shards < 1:
        raise UsageError(f"--shards {args.shards}: must be 1 or more")
    if not args.bandwidth > 0:
        raise UsageError(f"--bandwidth {args.bandwidth}: must be a positive number of bytes per second")
    runners = (plan.parse_runners(args.runners) if args.runners is not None
               else [plan.Runner(None, plan.DEFAULT_RUNS_ON)])
    matrix = config.load(args.pairings)
    made = plan.make(matrix, args.shards, runners, plan.timing_files(args.baselines, args.hardware), args.bandwidth)
    if args.out is not None:
        plan.write(args.out, made)
    if args.json:
        print_json(made)
    else:
        print(table(made))
    if args.out is not None:
        print(f"specgate: plan written to {args.out}", file=sys.stderr if args.json else sys.stdout)
    return Outcome.PASS


def table(made: dict, width: int = 100) -> str:
    shards, estimates = made["shards"], made["estimates"]
    lines = [f"{made['pairings']['path']}: {len(estimates)} pairings, {made['conditions']} conditions in "
             f"{made['shard_count']} shard{'s' if made['shard_count'] > 1 else ''}; est. time: a runner's wall time"]
    rows = [("shard", "runs-on", "conds", "est. time", "source", "pairings")]
    for s in shards:
        time = duration(s["seconds"]) + (f" + {s['unknown']} unknown" if s["unknown"] else "")
        rows.append((f"{s['index']}/{made['shard_count']}", " ".join(s["runs_on"]), str(s["conditions"]), time,
                     ", ".join(s["sources"]), ", ".join(s["pairings"])))
    lines += _columns(rows, width)
    lines.append("")
    rows = [("pairing", "GPUs", "shard", "conds", "est. time", "target")]
    for e in estimates:
        time = duration(e["seconds"]) + (f" + {e['unknown']} unknown" if e["unknown"] else "")
        rows.append((e["pairing"], str(e["gpus"]), str(e["shard"]), str(e["conditions"]), time, e["size"]))
    lines += _columns(rows, width)
    lines += [f"note: {n}" for n in made["notes"]]
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]], width: int) -> list[str]:
    """Fixed-width columns; the last one wrapped at its commas to fit ``width``."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    indent = sum(widths) + 2 * len(widths)
    out = []
    for r in rows:
        head = "".join(cell.ljust(w) + "  " for cell, w in zip(r, widths))
        line, first = head, True
        for part in r[-1].split(", "):
            piece = part if first else ", " + part
            if not first and len(line) + len(piece) > width:
                out.append(line + ",")
                line, piece = " " * indent, part
            line, first = line + piece, False
        out.append(line.rstrip())
    return out


def duration(seconds: float) -> str:
    """12s, 4m10s, 2h05m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
