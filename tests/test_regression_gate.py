"""The gate on a real engine: injected regressions of known size fail, an unchanged rerun passes.

Default sample size of configs/cpu.toml (32 prompts, 64 new tokens, temperature 0).
"""

from pathlib import Path

import pytest

from fault_injection import corrupted_drafts, slower_requests
from specgate import config, prompts, verdict
from specgate.engine import Engine
from specgate.results import RunResult

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def conditions():
    return {c.id: c for c in config.load(ROOT / "configs" / "cpu.toml").conditions()}


def test_five_percent_fewer_accepted_steps_fail_an_unchanged_rerun_passes(conditions):
    c = conditions["fixture-aligned-draft_model-k2"]
    with Engine(c) as engine:
        base = engine.run_once(prompts.load("code", c.pairing.num_prompts, 0), c)
        rerun = engine.run_once(prompts.load("code", c.pairing.num_prompts, 0), c)
        with corrupted_drafts(engine, every=20) as calls:
            degraded = engine.run_once(prompts.load("code", c.pairing.num_prompts, 0), c)
    assert calls["n"] > 100
    tol = {"latency": 10.0}  # timing is not under test here
    assert verdict.judge(base, rerun, tol).status == "pass"
    v = verdict.judge(base, degraded, tol)
    check = next(x for x in v.checks if x.metric == "acceptance_rate")
    assert -0.08 < check.change < -0.035, check.reason  # about 1 step in 20 loses its accepted drafts
    assert v.status == "fail" and not check.passed, v.reason
    assert "acceptance_rate fell" in v.reason


def test_fifteen_percent_slower_requests_fail_an_unchanged_rerun_passes(conditions):
    """Each prompt runs three times back to back (base, rerun, slowed), so that machine drift,
    which on a shared machine moves whole runs by +-15%, hits the three alike."""
    c = conditions["fixture-nospec"]
    base, rerun, slow = [], [], []
    with Engine(c) as engine:
        for prompt in prompts.load("code", c.pairing.num_prompts, 0):
            base.append(engine.run_once([prompt], c).requests[0])
            rerun.append(engine.run_once([prompt], c).requests[0])
            with slower_requests(engine, 0.15):
                slow.append(engine.run_once([prompt], c).requests[0])
    as_run = lambda requests: RunResult(c.id, "sequential", 0, sum(r.latency_s for r in requests), tuple(requests))
    base, rerun, slow = as_run(base), as_run(rerun), as_run(slow)
    assert verdict.judge(base, rerun).status == "pass", verdict.judge(base, rerun).reason
    v = verdict.judge(base, slow)
    assert v.status == "fail" and [x.metric for x in v.failures] == ["latency"], [x.reason for x in v.checks]
    assert "latency rose" in v.reason
