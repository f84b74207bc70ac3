"""engines.beside: what is timed beside a run's requests is taken out of the run's clock (the run's
wall_s and pytest-benchmark's timer of specgate's benchmarks). A fake clock: nothing here waits."""

from specgate.engines import beside
from specgate.matrix.prompts import Prompt


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_speculative_clock_leaves_out_the_paired_controls_requests(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(beside.time, "perf_counter", clock)
    monkeypatch.setattr(beside, "_beside_s", 0.0)

    class Paired:  # the no-speculation engine: each of its requests takes 5 s here
        def timed(self, condition, prompt, index):
            clock.now += 5.0
            return None, 5.0

    def request():  # the condition's own request: 2 s
        clock.now += 2.0
        return "tokens"

    condition = type("C", (), {"control": None})()
    timed = beside.Beside(condition, paired=Paired())
    start = beside.speculative_clock()
    for index in range(4):  # even requests time the control before, odd ones after
        result, fields = timed.around(index, Prompt(str(index), "x"), "x", request)
        assert (result, fields) == ("tokens", {"control_latency": 5.0})
    assert clock.now - 100.0 == 28.0  # the process clock saw both sides
    assert beside.speculative_clock() - start == 8.0  # the run's clock only its own requests
