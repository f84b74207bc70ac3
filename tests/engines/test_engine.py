"""Real vLLM engines on the fixture models: runs, counters, teardown and greedy equivalence."""

import pytest

from paths import CPU_CONFIG
from specgate.core.metrics import request_counter_total, summarize
from specgate.engines.arguments import engine_key
from specgate.engines.engine import Engine
from specgate.engines.errors import EngineError
from specgate.engines.pool import EnginePool
from specgate.gate import sanity
from specgate.matrix import config, prompts

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def conditions():
    matrix = config.load(CPU_CONFIG, {"num_prompts": 4, "max_new_tokens": 16, "rounds": 1})
    return {c.id: c for c in matrix.conditions()}


@pytest.fixture(scope="module")
def pool():
    pool = EnginePool()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def runs(conditions, pool):
    """One run per condition used below, in an order that builds each engine once."""
    out = {}
    for cid in ["fixture-nospec", "fixture-aligned-draft_model-k2", "fixture-ngram-k3"]:
        c = conditions[cid]
        out[cid] = pool.get(c).run(prompts.for_pairing(c.pairing), c)
    return out


def test_speculative_run_reports_consistent_counters(conditions, runs):
    c = conditions["fixture-aligned-draft_model-k2"]
    run = runs[c.id]
    m = summarize(run, runs["fixture-nospec"])
    assert sanity.problems(c, run, m) == []
    assert run.counters.drafts > 0 and run.counters.draft_tokens == 2 * run.counters.drafts
    assert len(run.counters.accepted_per_pos) == 2
    # vLLM reports acceptance twice (engine counters, per-request histograms); they must agree.
    per_request = request_counter_total(run)
    assert (per_request.accepted, per_request.draft_tokens) == (run.counters.accepted, run.counters.draft_tokens)
    assert all(r.output_tokens == 16 and r.latency_s > 0 for r in run.requests)
    assert 1.0 <= m.mean_acceptance_length <= 3.0 and m.speedup > 0


def test_control_run_has_no_speculation(conditions, runs):
    run = runs["fixture-nospec"]
    assert run.counters.drafts == 0 and run.counters.accepted == 0
    assert sanity.problems(conditions["fixture-nospec"], run, summarize(run)) == []


def test_batch_mode_gives_throughput_and_request_latencies(conditions, pool):
    import dataclasses

    c = dataclasses.replace(conditions["fixture-ngram-k3"], mode="batch")
    run = pool.get(c).run(prompts.load("code", 4, 0), c)
    assert run.mode == "batch" and summarize(run).tokens_per_s > 0
    assert sum(r.output_tokens for r in run.requests) == 4 * 16


def test_pool_keeps_one_engine_and_closes_the_previous(conditions):
    pool = EnginePool()
    try:
        first = pool.get(conditions["fixture-ngram-k1"])
        assert pool.get(conditions["fixture-ngram-k1"]) is first
        second = pool.get(conditions["fixture-ngram-k2"])
        assert first.llm is None and second.llm is not None and pool.builds == 2
    finally:
        pool.close()
    assert second.llm is None


def test_paired_control_is_the_engine_the_control_ran_on_and_the_speculative_one_keeps_its_counters(conditions):
    import gc

    pool = EnginePool()
    try:
        control = pool.get(conditions["fixture-nospec"])
        c = conditions["fixture-ngram-k1"]
        assert pool.paired_control(c) is control and pool.current is None
        spec = pool.get(c)
        assert pool.builds == 2 and control.llm is not None
        run = spec.run(prompts.for_pairing(c.pairing), c, paired=control)
        assert run.counters.drafts > 0 and all(r.control_latency_s > 0 for r in run.requests)
    finally:
        pool.close()
    # Closing froze what is left alive (process.release_memory), and the next close thaws it.
    assert gc.get_freeze_count() > 0


def test_a_closed_engine_is_collected_not_frozen_alive(conditions):
    """Nothing may hold the engine while memory is released: a closed engine kept alive through
    gc.freeze made every next engine fault in fresh pages in its timed requests (latency against
    the paired control rose 5-10% for draft_model in the CPU default)."""
    import weakref

    from specgate.engines.engine import Engine

    engine = Engine(conditions["fixture-ngram-k1"], stage_timers=False)
    engine.build()
    alive = weakref.ref(engine.llm)
    engine.close()
    assert engine.llm is None and alive() is None, "the closed vLLM engine survived its own close()"


def test_engine_refuses_a_condition_that_needs_another_engine(conditions, pool):
    engine = pool.get(conditions["fixture-ngram-k3"])
    other = conditions["fixture-ngram-k1"]
    assert engine_key(other) != engine_key(engine.condition)
    with pytest.raises(EngineError, match="needs a different engine"):
        engine.run(prompts.load("code", 1, 0), other)


def test_build_failure_names_the_condition(conditions):
    import dataclasses

    c = conditions["fixture-ngram-k1"]
    broken = dataclasses.replace(c, pairing=dataclasses.replace(c.pairing, engine={"max_model_len": -5}))
    with pytest.raises(EngineError, match="fixture-ngram-k1: engine failed to build"):
        with Engine(broken):
            pass


def test_threads_zero_gives_torch_its_default_back_after_a_run_that_set_another():
    # torch's count is the process's: the lossless lab (threads = 0) after the CPU default's cells
    # (threads = 1) inherited one thread and ran 1.5x slower.
    import torch

    from specgate.engines import process

    process.set_threads(0)
    default = torch.get_num_threads()
    try:
        process.set_threads(default + 1)
        assert torch.get_num_threads() == default + 1
    finally:
        process.set_threads(0)
    assert torch.get_num_threads() == default
