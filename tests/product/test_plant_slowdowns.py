"""The per-step slowdowns of tests/vllm_plants.py, on a stand-in for vLLM's model runner (no
engine): which calls pay, which engines pay, and SPECGATE_PLANT_FRACTION through scripts/plant_vllm.py."""

import time
from types import SimpleNamespace

import pytest

import vllm_plants
from scripts import plant_vllm

STEP_CALLS = ("execute_model", "sample_tokens")
SLOWDOWNS = {"busy_in_every_step", "sleep_in_every_step", "busy_in_speculative_steps", "sleep_in_speculative_steps"}


@pytest.fixture
def runner(monkeypatch):
    """vLLM's GPUModelRunner with each step call replaced by a 20 ms sleep that returns its name."""
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    for name in STEP_CALLS:
        def call(self, *args, name=name, **kwargs):
            time.sleep(0.02)
            return name
        monkeypatch.setattr(GPUModelRunner, name, call)
    return GPUModelRunner


def test_a_speculative_only_slowdown_costs_every_step_call_of_speculative_engines_alone(runner):
    plain, speculative = SimpleNamespace(speculative_config=None), SimpleNamespace(speculative_config=object())
    stubs = [getattr(runner, name) for name in STEP_CALLS]
    costs = []
    with vllm_plants._in_every_step(0.5, costs.append, speculative_only=True):
        assert [getattr(runner, name)(plain) for name in STEP_CALLS] == list(STEP_CALLS)
        assert costs == []
        assert [getattr(runner, name)(speculative) for name in STEP_CALLS] == list(STEP_CALLS)
    assert len(costs) == 2 and all(cost >= 0.5 * 0.02 for cost in costs)
    assert [getattr(runner, name) for name in STEP_CALLS] == stubs


def test_the_plugin_plants_a_slowdown_of_the_fraction_asked_for_the_whole_run(runner, monkeypatch):
    assert SLOWDOWNS <= set(plant_vllm._plants().PLANTS)
    monkeypatch.setenv("SPECGATE_PLANT", "sleep_in_every_step")
    monkeypatch.setenv("SPECGATE_PLANT_FRACTION", "1.0")
    stub = runner.execute_model
    plant_vllm.pytest_configure(None)
    try:
        started = time.perf_counter()
        runner.execute_model(SimpleNamespace(speculative_config=None))
        assert time.perf_counter() - started >= 2 * 0.02  # the call, then as long again asleep
    finally:
        plant_vllm.pytest_unconfigure(None)
    assert runner.execute_model is stub


@pytest.mark.parametrize("plant, fraction, said", [
    ("drafter_bookkeeping_off", "0.1", "drafter_bookkeeping_off takes no fraction; the plants that do:"),
    ("busy_in_every_step", "ten", "SPECGATE_PLANT_FRACTION='ten': expected a number")])
def test_a_fraction_the_plant_cannot_take_stops_the_run(monkeypatch, plant, fraction, said):
    monkeypatch.setenv("SPECGATE_PLANT", plant)
    monkeypatch.setenv("SPECGATE_PLANT_FRACTION", fraction)
    with pytest.raises(SystemExit) as stopped:
        plant_vllm.pytest_configure(None)
    assert said in str(stopped.value)
    assert not plant_vllm._ACTIVE
