"""Measure the regression gate on this machine: false alarms of unchanged reruns, and the
smallest injected acceptance drop and latency rise that the default sample size flags.

    .venv/bin/python scripts/measure_gate.py [--reruns 10] > gate.txt

Uses configs/cpu.toml's fixture-aligned-draft_model-k2 at temperature 0 and 1 (about 15
minutes on 2 cores). Prints one line per measurement; nothing is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fault_injection import corrupted_drafts, slower_requests  # noqa: E402
from specgate.matrix import config
from specgate.matrix import prompts
from specgate.gate import verdict  # noqa: E402
from specgate.engines.engine import Engine  # noqa: E402
from specgate.core.results import RunResult  # noqa: E402


def condition(temperature: float, seed: int = 0):
    c = {x.id: x for x in config.load(ROOT / "configs" / "cpu.toml").conditions()}["fixture-aligned-draft_model-k2"]
    return dataclasses.replace(c, pairing=dataclasses.replace(c.pairing, temperature=temperature, seed=seed))


def fresh_run(c):
    with Engine(c) as engine:
        return engine.run(prompts.load("code", c.pairing.num_prompts, 0), c)


def failed(v, prefix: str) -> bool:
    return any(x.metric.startswith(prefix) or x.metric == prefix for x in v.failures)


def false_alarms(temperature: float, reruns: int) -> None:
    c = condition(temperature)
    base = fresh_run(c)
    acc = lat = 0
    changes = []
    for i in range(reruns):
        v = verdict.judge(base, fresh_run(c), c.pairing.tolerances, seed=i)
        acc += failed(v, "acceptance") or failed(v, "mean_acceptance_length")
        lat += failed(v, "latency")
        changes.append(next(x.change for x in v.checks if x.metric == "latency"))
    print(f"T={temperature}: unchanged reruns (fresh engine, same seeds): acceptance false alarms {acc}/{reruns}, "
          f"latency false alarms {lat}/{reruns}; latency change per rerun "
          f"{', '.join(f'{x:+.1%}' for x in changes)}", flush=True)
    if temperature > 0:
        acc = 0
        for s in range(1, reruns + 1):
            other = fresh_run(condition(temperature, seed=s))
            acc += verdict.judge(base, other, {"latency": 10.0}, seed=s).status == "fail"
        print(f"T={temperature}: reruns with other sampling seeds: acceptance false alarms {acc}/{reruns}", flush=True)


def detection() -> None:
    c = condition(0.0)
    ids = prompts.load("code", c.pairing.num_prompts, 0)
    with Engine(c) as engine:
        base = engine.run_once(ids, c)
        for every in (100, 50, 33, 25, 20):
            with corrupted_drafts(engine, every):
                v = verdict.judge(base, engine.run_once(ids, c), {"latency": 10.0})
            rate = next(x for x in v.checks if x.metric == "acceptance_rate")
            print(f"every {every}th step corrupted: acceptance_rate {rate.change:+.1%} -> {v.status}", flush=True)
        for fraction in (0.05, 0.08, 0.10, 0.12, 0.15):
            pairs = []
            for prompt in ids:
                b = engine.run_once([prompt], c).requests[0]
                with slower_requests(engine, fraction):
                    s = engine.run_once([prompt], c).requests[0]
                pairs.append((b, s))
            as_run = lambda reqs: RunResult(c.id, "sequential", 2, 1.0, tuple(reqs))
            v = verdict.judge(as_run(p[0] for p in pairs), as_run(p[1] for p in pairs), {"acceptance_rate": 10.0})
            lat = next(x for x in v.checks if x.metric == "latency")
            print(f"requests {fraction:.0%} slower (interleaved): latency {lat.change:+.1%} -> {v.status}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=10)
    args = parser.parse_args()
    false_alarms(0.0, args.reruns)
    false_alarms(1.0, args.reruns)
    detection()


if __name__ == "__main__":
    main()
