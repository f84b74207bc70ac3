"""The work-arounds of engines/known_defects.py stand in for vLLM's code without hiding what else vLLM
reads from it: vLLM 0.32's rejection sampler calls ``_expand.register_warmup()`` when an engine is
built, and a cell that works around cpu-expand-uninitialised builds its engine inside the reference
path (a plain function there failed the build: AttributeError, measured 2026-12-01)."""

import torch

from specgate.engines import known_defects


class _Kernel:
    def __init__(self):
        self.registered = 0

    def register_warmup(self, **kwargs):
        self.registered += 1

    def __call__(self, *args, **kwargs):
        raise AssertionError("the broken kernel ran")


def test_the_expand_stand_in_computes_the_reference_and_keeps_the_kernel_s_other_attributes():
    kernel = _Kernel()
    stand_in = known_defects._ExpandReference(kernel)
    stand_in.register_warmup()
    assert kernel.registered == 1
    out = torch.empty(5)
    # Two requests: temperature 0.7 over 2 draft positions, 0 (greedy, replaced by 1) over 3.
    stand_in(out, torch.tensor([0.7, 0.0]), torch.tensor([2, 5], dtype=torch.int32), 0, 1)
    assert out.tolist() == [torch.tensor(0.7).item()] * 2 + [1.0] * 3
