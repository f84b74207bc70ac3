"""What only a GPU can show: CUDA-event stage clocks and engine teardown freeing GPU memory.
Skipped on machines without CUDA (this project's CI); run on a GPU runner with `make test`."""

import pytest
import torch

from paths import CPU_CONFIG

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("clock_name", ["events", "sync"])
def test_cuda_clocks_time_queued_kernels(clock_name):
    from specgate.engines.timing import make_clock

    clock = make_clock("cuda", clock_name)
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    start = clock.mark()
    for _ in range(20):
        a = a @ a / 64
    end = clock.mark()
    clock.resolve()
    # 20 4096^3 matmuls are ~2.7 TFLOP: well over a millisecond on any GPU, although launching
    # them takes microseconds; a clock that only saw the launches would read far less.
    assert clock.seconds(start, end) > 1e-3


@needs_cuda
@pytest.mark.engine
def test_engine_teardown_frees_gpu_memory():
    import dataclasses

    from specgate.matrix import config
    from specgate.matrix import prompts
    from specgate.engines.engine import Engine

    matrix = config.load(CPU_CONFIG, {"num_prompts": 2, "max_new_tokens": 8, "rounds": 1})
    c = {x.id: x for x in matrix.conditions()}["fixture-aligned-draft_model-k2"]
    # The CPU default's KV-cache size in bytes is a CPU setting; on a GPU take a small share.
    engine_args = {k: v for k, v in c.pairing.engine.items() if k != "kv_cache_memory_bytes"}
    c = dataclasses.replace(c, pairing=dataclasses.replace(c.pairing, engine={**engine_args,
                                                                             "gpu_memory_utilization": 0.2}))
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    for _ in range(3):
        with Engine(c) as engine:
            engine.run_once(prompts.for_pairing(c.pairing), c)
            assert torch.cuda.memory_allocated() > before + 10 * 2**20  # weights and KV cache are on the GPU
        torch.cuda.synchronize()
        assert torch.cuda.memory_allocated() - before < 64 * 2**20, "engine left GPU memory allocated"
