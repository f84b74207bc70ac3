"""A pytest plugin that plants a per-step slowdown inside vLLM's own model runner (not specgate's
hooks), for measuring what the timing verdict catches (docs/baselines.md):

    SPECGATE_SLOW=step  pytest benchmarks -p scripts.slow_vllm ...   # every engine: +10% per step
    SPECGATE_SLOW=spec  pytest benchmarks -p scripts.slow_vllm ...   # speculative engines only
    SPECGATE_SLOW_FRACTION=0.1 (default)
    SPECGATE_SLOW_KIND=busy (default: burn CPU) or sleep (time.sleep: wall time, no CPU time)

After each call of GPUModelRunner.execute_model and .sample_tokens, burn or sleep for the
fraction of the time the call itself took, so the step costs that fraction more on any machine.
"""

import os
import time

FRACTION = float(os.environ.get("SPECGATE_SLOW_FRACTION", "0.1"))
MODE = os.environ.get("SPECGATE_SLOW", "step")
KIND = os.environ.get("SPECGATE_SLOW_KIND", "busy")


def _slowed(original):
    def slowed(self, *args, **kwargs):
        if MODE == "spec" and getattr(self, "speculative_config", None) is None:
            return original(self, *args, **kwargs)
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            extra = FRACTION * (time.perf_counter() - started)
            if KIND == "sleep":
                time.sleep(extra)
            else:
                until = time.perf_counter() + extra
                while time.perf_counter() < until:
                    pass
    return slowed


def pytest_configure(config):
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    for name in ("execute_model", "sample_tokens"):
        setattr(GPUModelRunner, name, _slowed(getattr(GPUModelRunner, name)))
