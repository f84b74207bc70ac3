"""runner.wrapped puts back exactly what was there, so vLLM's methods stay vLLM's after a timed run."""

import types

from specgate.engines.runner import wrapped


class Runner:
    def step(self):
        return "vllm"


def test_a_wrapped_method_leaves_no_instance_attribute_behind():
    runner = Runner()
    with wrapped(runner, "step", lambda original: lambda: "timed " + original()):
        assert runner.step() == "timed vllm"
    assert "step" not in vars(runner)
    # A later change to the class (a patched vLLM, a planted bug) reaches the instance; a bound
    # method left behind as an instance attribute would hide it.
    Runner.step = lambda self: "patched"
    try:
        assert runner.step() == "patched"
    finally:
        del Runner.step
        Runner.step = lambda self: "vllm"


def test_an_instance_or_module_attribute_is_restored_as_it_was():
    def own():
        return "own"

    obj = types.SimpleNamespace(step=own)
    with wrapped(obj, "step", lambda original: lambda: "wrapped"):
        assert obj.step() == "wrapped"
    assert vars(obj)["step"] is own
