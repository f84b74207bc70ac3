"""Measure what the stage timers cost: wall time of the same prompts with and without them.

    .venv/bin/python scripts/measure_timer_overhead.py [--pairs 6]

For each condition below (configs/cpu.toml, its 32 prompts x 64 tokens), one engine runs the
prompt set alternately with timers off and on (off, on, off, on, ...) so both see the same
machine state; prints the on/off wall-time ratio of each pair, their median and spread.
Also prints how much of each step the three stages cover, and a bound that machine noise
cannot blur: the cost of one timed call (wrapper + two clock reads, timed over 10^5 calls)
times the timed calls per step, over the mean step time. Nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from specgate.engines.engine import Engine  # noqa: E402
from specgate.engines.timing import WallClock, _Accumulator  # noqa: E402
from specgate.matrix import config
from specgate.matrix import prompts  # noqa: E402

CONDITIONS = ("fixture-nospec", "fixture-aligned-draft_model-k3", "fixture-ngram-k3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="off/on pairs per condition (default 6)")
    args = parser.parse_args()
    conds = {c.id: c for c in config.load(ROOT / "configs" / "cpu.toml").conditions()}
    all_ratios = []

    def noop():
        return None

    timed = _Accumulator(WallClock(), {}).timed("x", noop)
    n = 100_000
    per_call = (min(timeit.repeat(timed, number=n, repeat=5)) - min(timeit.repeat(noop, number=n, repeat=5))) / n
    print(f"one timed call costs {per_call * 1e6:.2f} us more than an untimed one")
    for cid in CONDITIONS:
        c = conds[cid]
        ps = prompts.for_pairing(c.pairing)
        with Engine(c) as engine:
            ratios, covered = [], []
            for _ in range(args.pairs):
                engine.stage_timers = False
                off = engine.run_once(ps, c).wall_s
                engine.stage_timers = True
                run = engine.run_once(ps, c)
                ratios.append(run.wall_s / off)
                s = run.stages
                covered.append((s.scoring_s + s.proposal_s + s.verification_s) / s.step_s)
        all_ratios += ratios
        calls_per_step = (s.steps * 2 + s.proposal_calls + s.verification_calls) / s.steps
        bound = per_call * calls_per_step / (s.step_s / s.steps)
        print(f"{cid}: on/off wall ratio median {statistics.median(ratios):.4f} "
              f"(min {min(ratios):.4f}, max {max(ratios):.4f}; pairs: {' '.join(f'{r:.3f}' for r in ratios)}); "
              f"stages cover {min(covered):.1%}..{max(covered):.1%} of step time; "
              f"steps {s.step_s / run.wall_s:.1%} of wall; timer cost {calls_per_step:.0f} calls x "
              f"{per_call * 1e6:.2f} us per {s.step_s / s.steps * 1e3:.2f} ms step = {bound:.3%}", flush=True)
    print(f"all: median {statistics.median(all_ratios):.4f}, mean {statistics.fmean(all_ratios):.4f}, "
          f"min {min(all_ratios):.4f}, max {max(all_ratios):.4f} over {len(all_ratios)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
