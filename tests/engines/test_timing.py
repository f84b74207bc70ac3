"""Stage timers on real engines (fixture models), their clocks, and their refusal to guess."""

from types import SimpleNamespace

import pytest

from paths import CPU_CONFIG
from specgate.core.metrics import summarize
from specgate.engines.engine import Engine
from specgate.engines.runner import model_runner
from specgate.engines.timing import EventClock, StageTimer, TimerError, make_clock
from specgate.matrix import config, prompts


@pytest.fixture(scope="module")
def timed_runs():
    matrix = config.load(CPU_CONFIG, {"num_prompts": 4, "max_new_tokens": 24, "rounds": 1})
    conds = {c.id: c for c in matrix.conditions()}
    out = {}
    for cid in ("fixture-nospec", "fixture-aligned-draft_model-k1", "fixture-aligned-draft_model-k4"):
        c = conds[cid]
        with Engine(c) as engine:
            runner_methods = _runner_methods(engine)
            run = engine.run_once(prompts.load("code", 4, 0), c)
            # The wrappers are gone after the run: the runner's methods are vLLM's own again.
            assert _runner_methods(engine) == runner_methods
            assert not {"execute_model", "sample_tokens", "propose_draft_token_ids"} & set(vars(model_runner(engine.llm)))
        out[cid] = run
    return out


def _runner_methods(engine):
    from specgate.engines.runner import model_runner

    runner = model_runner(engine.llm)
    sampler = getattr(runner, "rejection_sampler", None)
    return (runner.execute_model, runner.sample_tokens, getattr(runner, "propose_draft_token_ids", None),
            getattr(sampler, "forward", None))


@pytest.mark.engine
def test_speculative_stages_are_timed_and_cover_the_step(timed_runs):
    for cid in ("fixture-aligned-draft_model-k1", "fixture-aligned-draft_model-k4"):
        s = timed_runs[cid].stages
        assert s.steps > 0 and s.scoring_s > 0 and s.proposal_s > 0 and s.verification_s > 0, (cid, s)
        assert s.proposal_calls == s.steps and s.verification_calls > 0
        assert s.draft_tokens == timed_runs[cid].counters.draft_tokens and s.drafts == timed_runs[cid].counters.drafts
        assert s.drafts < s.steps  # prefill steps carry no drafts
        covered = (s.scoring_s + s.proposal_s + s.verification_s) / s.step_s
        assert 0.9 <= covered <= 1.0, f"{cid}: stages cover {covered:.1%} of the step time"


@pytest.mark.engine
def test_more_accepted_drafts_need_fewer_steps(timed_runs):
    k1, k4 = timed_runs["fixture-aligned-draft_model-k1"].stages, timed_runs["fixture-aligned-draft_model-k4"].stages
    # Fewer steps are needed when more is accepted (counts, not times: comparing the times of two
    # runs failed a fresh-clone CI run under a one-core load, where k4's proposal per call measured
    # 2.8 ms against k1's 5.2 ms; how the stage times order with k is in the reports, not asserted).
    assert k4.steps < k1.steps
    control = timed_runs["fixture-nospec"]
    m = summarize(timed_runs["fixture-aligned-draft_model-k1"], control)
    assert m.cost_ratio > 0 and m.predicted_speedup > 0


@pytest.mark.engine
def test_control_has_no_proposal_or_verification(timed_runs):
    s = timed_runs["fixture-nospec"].stages
    assert s.steps > 0 and s.scoring_s > 0
    assert s.proposal_calls == 0 and s.verification_calls == 0 and s.proposal_s == 0


def _llm_with_runner(runner):
    worker = SimpleNamespace(model_runner=runner)
    core = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(worker=worker)))
    return SimpleNamespace(llm_engine=SimpleNamespace(engine_core=SimpleNamespace(engine_core=core)))


def test_a_moved_vllm_method_is_named_not_guessed():
    runner = SimpleNamespace(sample_tokens=lambda: None, device=SimpleNamespace(type="cpu"))  # no execute_model
    with pytest.raises(TimerError, match=r"execute_model is missing"):
        StageTimer(_llm_with_runner(runner))


def test_speculation_without_a_verification_hook_is_refused():
    runner = SimpleNamespace(execute_model=lambda: None, sample_tokens=lambda: None,
                             propose_draft_token_ids=lambda: None, speculative_config=object(),
                             device=SimpleNamespace(type="cpu"))
    with pytest.raises(TimerError, match=r"no hook for \['verification'\]"):
        StageTimer(_llm_with_runner(runner))


def test_cuda_clocks_are_refused_on_cpu():
    assert make_clock("cpu").name == "wall"
    with pytest.raises(TimerError, match="needs a CUDA device"):
        make_clock("cpu", "events")


class _FakeCudaEvent:
    """Stands in for torch.cuda.Event (no GPU here): record() stamps a fake device clock."""

    clock = 0.0

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.at = None

    def record(self):
        _FakeCudaEvent.clock += 2.5  # each record is 2.5 ms after the previous on the fake stream
        self.at = _FakeCudaEvent.clock

    def elapsed_time(self, end):
        return end.at - self.at


def test_event_clock_reads_milliseconds_after_synchronising():
    synced = []
    torch_like = SimpleNamespace(cuda=SimpleNamespace(Event=_FakeCudaEvent, synchronize=lambda: synced.append(1)))
    clock = EventClock(torch_like)
    start, end = clock.mark(), clock.mark()
    clock.resolve()
    assert synced and clock.seconds(start, end) == pytest.approx(0.0025)
