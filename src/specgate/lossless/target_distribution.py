"""The exact distribution of a target model's first two sampled tokens under vLLM's sampling rules.

For a model small enough to run many forward passes (the fixture target), the distribution of
(token 1, token 2) after a prompt is enumerable: one pass for token 1, one batched pass over the
first tokens that carry the probability mass for token 2. A one-sample test of an engine's
outputs against it is stronger than comparing two engines' samples.

Sampling rules, in vLLM's order: repetition penalty on the prompt and output tokens, temperature,
min-p, top-k, top-p (the token that crosses top-p stays). ``slack`` widens min-p and top-p a
little, to tell tokens that are impossible from tokens that sit on a threshold, where two
correct implementations may disagree by rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from specgate.lossless.sampling import process_logits
from specgate.matrix import features

OTHER = "*"  # a first token outside the enumerated set, or a second token outside the named bins


@dataclass(frozen=True)
class TokenMasks:
    """A setting's token masks as ids, by position in the output (0: token 1, 1: token 2), as vLLM
    applies them before temperature: ``bad`` sequences ban their last token where the output so far
    ends with the rest (a one-token one everywhere); tokens outside ``allowed`` (when given); and
    ``stops`` (stop ids and the EOS) at positions before ``min_tokens``."""

    bad: tuple[tuple[int, ...], ...] = ()
    allowed: frozenset[int] | None = None
    stops: frozenset[int] = frozenset()
    min_tokens: int = 0

    def apply(self, logits: torch.Tensor, output: list[int]) -> torch.Tensor:
        banned = {seq[-1] for seq in self.bad if tuple(output[len(output) - len(seq) + 1:]) == seq[:-1]
                  and len(output) >= len(seq) - 1}
        if len(output) < self.min_tokens:
            banned |= self.stops
        if banned:
            logits[sorted(banned)] = -torch.inf
        if self.allowed is not None:
            keep = torch.zeros_like(logits, dtype=torch.bool)
            keep[sorted(self.allowed)] = True
            logits = logits.masked_fill(~keep, -torch.inf)
        return logits


@dataclass(frozen=True)
class Setting:
    name: str
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    # A prompt of its own instead of the pairing's: one the setting acts on at the speculative position
    # (a repetition penalty moves token 2 only where the likely tokens 2 are already in the text).
    prompt: str | None = None
    # Token masks, named by text so one setting means the same on any tokenizer (TokenMasks): vLLM's
    # bad_words (each with and without a leading space, vLLM's rule), allowed_token_ids (every token of
    # these texts), and min_tokens with stop_token_ids (each text one token).
    bad_words: tuple[str, ...] = ()
    allowed_token_texts: tuple[str, ...] = ()
    min_tokens: int = 0
    stop_token_texts: tuple[str, ...] = ()
    # Where the suite runs it: on these methods only (() every method), at their smallest k only. The
    # masks run in the rejection sampler that every method shares, so one cell shows them; the
    # samplers' own settings (temperature, top-k, top-p) run everywhere.
    methods: tuple[str, ...] = ()
    smallest_k_only: bool = False

    @property
    def off(self) -> "Setting | None":
        """The same sampling with what this setting tests switched off (temperature 1, nothing else),
        or None for the plain setting itself."""
        plain = Setting(f"{self.name}-off", prompt=self.prompt)
        return None if self._what() == plain._what() else plain

    def _what(self) -> tuple:
        return (self.sampling_kwargs(), self.bad_words, self.allowed_token_texts, self.min_tokens,
                self.stop_token_texts)

    def sampling_kwargs(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k, "min_p": self.min_p,
                "repetition_penalty": self.repetition_penalty}

    def _token_ids(self, encode) -> dict:
        """The texts as vLLM's token-id keys (features.resolve: each stop text one token, else
        features.TokenTextError)."""
        texts = {"stop_token_texts": list(self.stop_token_texts), "allowed_token_texts": list(self.allowed_token_texts)}
        return features.resolve({k: v for k, v in texts.items() if v}, encode)

    def request_kwargs(self, encode: Callable[[str], list[int]]) -> dict:
        """vLLM's SamplingParams arguments for this setting; ``encode``: text -> ids without special
        tokens."""
        kw = {**self.sampling_kwargs(), **self._token_ids(encode)}
        if self.bad_words:
            kw["bad_words"] = list(self.bad_words)
        if self.min_tokens:
            kw["min_tokens"] = self.min_tokens
        return kw

    def masks(self, encode: Callable[[str], list[int]] | None, eos: int | None = None) -> TokenMasks:
        """The masks as token ids (``eos``: the tokenizer's, which min_tokens also holds back)."""
        if encode is None or not (self.bad_words or self.allowed_token_texts or self.min_tokens):
            return TokenMasks()
        bad = []
        for word in self.bad_words:  # vllm.SamplingParams.update_from_tokenizer's two forms
            plain = tuple(encode(word.lstrip()))
            bad.append(plain)
            spaced = tuple(encode(" " + word.lstrip()))
            if spaced and spaced[0] != plain[0] and len(spaced) == len(plain):
                bad.append(spaced)
        ids = self._token_ids(encode)
        allowed = frozenset(ids["allowed_token_ids"]) if "allowed_token_ids" in ids else None
        stops = frozenset(ids.get("stop_token_ids", ())) | ({eos} if eos is not None else set())
        return TokenMasks(tuple(bad), allowed, stops if self.min_tokens else frozenset(), self.min_tokens)


def process(logits: torch.Tensor, s: Setting, seen: set[int], slack: float = 0.0,
            masks: TokenMasks | None = None, output: list[int] = ()) -> torch.Tensor:
    """One position's logits -> sampling probabilities (float64) under ``s``; ``masks``: s's
    token masks (Setting.masks), applied at the position after ``output``."""
    logits = logits.to(torch.float64).clone()
    if masks is not None:
        logits = masks.apply(logits, list(output))
    if s.repetition_penalty != 1.0 and seen:
        idx = torch.tensor(sorted(seen))
        vals = logits[idx]
        logits[idx] = torch.where(vals > 0, vals / s.repetition_penalty, vals * s.repetition_penalty)
    if s.min_p > 0:
        probs = (logits / s.temperature).softmax(-1)
        logits = logits.masked_fill(probs < s.min_p * (1 - slack) * probs.max(), -torch.inf)
    return process_logits(logits, s.temperature, s.top_k, min(1.0, s.top_p + slack) if s.top_p < 1 else 1.0)


@dataclass
class TwoTokenDistribution:
    """P(t1) for every token, and P(t2 | t1) for the enumerated first tokens."""

    first: torch.Tensor  # [vocab]
    second: dict[int, torch.Tensor]  # t1 -> [vocab]
    possible_first: torch.Tensor  # [vocab] bool: nonzero under the slack rules
    possible_second: dict[int, torch.Tensor] = field(default_factory=dict)

    def bins(self, min_probability: float) -> dict[tuple, float]:
        """Joint outcomes with at least ``min_probability``; each first token's remaining second-token
        mass in (t1, OTHER); first tokens not enumerated in (OTHER,)."""
        out: dict[tuple, float] = {}
        for t1, p2 in self.second.items():
            joint = float(self.first[t1]) * p2
            keep = (joint >= min_probability).nonzero().flatten().tolist()
            for t2 in keep:
                out[(t1, t2)] = float(joint[t2])
            rest = float(self.first[t1]) - sum(out[(t1, t2)] for t2 in keep)
            if rest > 0:
                out[(t1, OTHER)] = rest
        rest = 1.0 - sum(float(self.first[t]) for t in self.second)
        if rest > 1e-12:
            out[(OTHER,)] = rest
        return out

    def second_marginal(self) -> torch.Tensor:
        """P(t2) over the enumerated first tokens ([vocab]; sums to their mass)."""
        return sum(float(self.first[t1]) * p2 for t1, p2 in self.second.items())

    def not_enumerated(self) -> float:
        """The mass of the first tokens that were not enumerated."""
        return max(0.0, 1.0 - sum(float(self.first[t]) for t in self.second))

    def bin_of(self, t1: int, t2: int, named: dict[tuple, float]) -> tuple:
        """The bin a sampled pair falls in; the pair itself (probability 0) when it is impossible."""
        if t1 not in self.second:
            return (OTHER,) if bool(self.possible_first[t1]) else (t1, t2)
        if (t1, t2) in named:
            return (t1, t2)
        return (t1, OTHER) if bool(self.possible_second[t1][t2]) else (t1, t2)


def _enumerated(forward, prompt: list[int], s: Setting, max_first: int, masks: TokenMasks):
    """Token 1's probabilities under ``s``, the first tokens that carry its mass (at most
    ``max_first``, most likely first) and the logits of the position after each."""
    logits = forward(torch.tensor([prompt]))[0]
    first = process(logits, s, set(prompt), masks=masks)
    order = first.argsort(descending=True)
    enumerated = [int(t) for t in order[:max_first] if first[t] > 0]
    return logits, first, enumerated, forward(torch.tensor([prompt + [t] for t in enumerated]))


def two_token_distribution(forward: Callable[[torch.Tensor], torch.Tensor], prompt: list[int], s: Setting,
                           max_first: int = 256, second_under: Setting | None = None,
                           encode: Callable[[str], list[int]] | None = None,
                           eos: int | None = None) -> TwoTokenDistribution:
    """``forward``: token ids [batch, length] -> last-position logits [batch, vocab]. ``second_under``:
    token 2 (the speculative position) sampled under another setting, token 1 under ``s``: what an
    engine that ignores ``s`` at the speculative position samples (with Setting.off). ``encode``
    (text -> ids) and ``eos``: for settings with token masks (Setting.masks)."""
    seen, second_s = set(prompt), second_under or s
    first_masks, second_masks = s.masks(encode, eos), second_s.masks(encode, eos)
    logits, first, enumerated, second_logits = _enumerated(forward, prompt, s, max_first, first_masks)
    possible_first = process(logits, s, seen, slack=1e-3, masks=first_masks) > 0
    second, possible = {}, {}
    for t1, row in zip(enumerated, second_logits):
        second[t1] = process(row, second_s, seen | {t1}, masks=second_masks, output=[t1])
        possible[t1] = process(row, second_s, seen | {t1}, slack=1e-3, masks=second_masks, output=[t1]) > 0
    return TwoTokenDistribution(first, second, possible_first, possible)


def _transformers_model(model_path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()


def transformers_forward(model_path: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The target's last-position logits in float32 through transformers (independent of vLLM)."""
    model = _transformers_model(model_path)

    @torch.no_grad()
    def forward(ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(input_ids=chunk).logits[:, -1, :] for chunk in ids.split(128)])

    return forward


def transformers_sequence_logits(model_path: str) -> Callable[[list[int]], torch.Tensor]:
    """ids -> the target's logits at every position ([len, vocab], float32) through transformers:
    teacher forcing, row i predicting token i + 1."""
    model = _transformers_model(model_path)

    @torch.no_grad()
    def logits(ids: list[int]) -> torch.Tensor:
        return model(input_ids=torch.tensor([ids])).logits[0]

    return logits
