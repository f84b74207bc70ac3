"""Where requests end, judged request by request in a cell whose requests end their own ways
(features.Feature.requests: EOS, stop ids, stop strings, min_tokens, max_tokens, bad_words,
allowed_token_ids, logprobs and prompt logprobs under penalties). Pure.

Speculation emits several tokens per step, so an end falls inside a step: code that assumed
one token per step keeps tokens past a stop, lets the first stop string listed win over the one
that completes first, or ends a request before its min_tokens. Three kinds of check:

- against the control (the same requests without speculation): where each request ended and
  why, its text, and its logprobs and prompt logprobs;
- against an oracle that needs no vLLM: the plain cell (same prompts, no end but max_tokens) gives
  the whole greedy continuation, from which a request whose settings only end it (EOS, stop ids,
  stop strings, max_tokens) must be a prefix cut exactly where the first end falls; a stop string
  cuts the text where the first string to complete in the text starts (vLLM's documented rule);
- the settings themselves: no stop id or EOS among the first min_tokens tokens, every token in
  allowed_token_ids, one logprob per token;
- and each kind of request must have been exercised: at least one request of the kind ended or
  emitted differently from the plain cell (a kind that changed nothing proves nothing).
"""

from __future__ import annotations

import math
from typing import Callable

from specgate.core.results import RequestRecord, RunResult

# Settings that change the distribution, not only where a request ends: no plain-cell oracle.
SHAPING = ("min_tokens", "bad_words", "allowed_token_ids", "logit_bias", "repetition_penalty",
           "presence_penalty", "frequency_penalty")
LOGPROB_TOLERANCE = 1e-3  # as feature_checks: fp32, k+1 positions scored in one forward vs one


def _ends(eos) -> set[int]:
    """The EOS ids: one id, several (a cell that names another token EOS keeps the target's own as a
    stop id), or None."""
    return set() if eos is None else {eos} if isinstance(eos, int) else set(eos)


def expected_end(plain: tuple[int, ...], setting: dict, eos) -> tuple[int, str]:
    """(tokens kept, finish reason) when only EOS, stop ids and max_tokens end a request whose
    whole greedy continuation is ``plain``: the first of them wins, its token kept. ``eos``: an
    id, ids or None."""
    stops = set(setting.get("stop_token_ids") or ())
    if not setting.get("ignore_eos", False):
        stops |= _ends(eos)
    limit = min(int(setting.get("max_tokens", len(plain))), len(plain))
    for j, t in enumerate(plain[:limit]):
        if t in stops:
            return j + 1, "stop"
    return limit, "length"


def first_stop_string(text: str, stops: list[str]) -> tuple[int, int, str] | None:
    """(start, end, string) of the stop string that completes first in ``text`` (ties: the one
    listed first), or None."""
    found = [(i + len(s), i, s) for s in stops for i in [text.find(s)] if s and i >= 0]
    if not found:
        return None
    end, start, s = min(found, key=lambda f: (f[0], stops.index(f[2])))
    return start, end, s


def _close(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Largest gap between two logprob series over their common length (inf for a non-finite one)."""
    worst = 0.0
    for x, y in zip(a, b):
        gap = abs(x - y)
        worst = math.inf if not math.isfinite(gap) else max(worst, gap)
    return worst


def _against_control(r: RequestRecord, c: RequestRecord) -> list[str]:
    found = []
    if (r.finish_reason, r.stop_string) != (c.finish_reason, c.stop_string):
        found.append(f"ended by {r.finish_reason} {r.stop_string or ''}".rstrip()
                     + f" where the control ended by {c.finish_reason} {c.stop_string or ''}".rstrip())
    if (r.text is not None or c.text is not None) and r.text != c.text:
        found.append(f"text {r.text!r} where the control's is {c.text!r}")
    if r.output_token_ids == c.output_token_ids and _close(r.logprobs, c.logprobs) > LOGPROB_TOLERANCE:
        found.append(f"logprobs differ from the control's by {_close(r.logprobs, c.logprobs):.3g} nats")
    if len(r.prompt_logprobs) != len(c.prompt_logprobs):
        found.append(f"{len(r.prompt_logprobs)} prompt logprobs where the control has {len(c.prompt_logprobs)}")
    elif _close(r.prompt_logprobs, c.prompt_logprobs) > LOGPROB_TOLERANCE:
        found.append(f"prompt logprobs differ from the control's by {_close(r.prompt_logprobs, c.prompt_logprobs):.3g}")
    return found


def _against_oracle(r: RequestRecord, whole: tuple[int, ...], setting: dict, eos,
                    decode: Callable[[list[int]], str] | None) -> list[str]:
    kept, reason = expected_end(whole, setting, eos)
    stops = list(setting.get("stop") or ())
    if stops and decode is not None:
        for m in range(1, kept + 1):
            hit = first_stop_string(decode(list(whole[:m])), stops)
            if hit is not None:
                start, end, s = hit
                text = decode(list(whole[:m]))
                want = text[:end] if setting.get("include_stop_str_in_output") else text[:start]
                found = []
                if r.stop_string != s or r.text != want:
                    found.append(f"stop string {s!r} completes first, so the text is {want!r}; got "
                                 f"{r.text!r} ended by {r.stop_string!r}")
                if r.output_tokens > m:
                    found.append(f"{r.output_tokens - m} tokens kept past the stop string {s!r}")
                return found
    if r.output_token_ids != whole[:kept]:
        return [f"expected the first {kept} tokens of the greedy continuation ({reason}); got {r.output_tokens} "
                f"tokens, {'a prefix' if r.output_token_ids == whole[:r.output_tokens] else 'other tokens'}"]
    if r.finish_reason != reason:
        return [f"finish reason {r.finish_reason} where {reason} ended it"]
    return []


def _settings(r: RequestRecord, setting: dict, eos) -> list[str]:
    found = []
    tokens = r.output_token_ids
    m = int(setting.get("min_tokens") or 0)
    if m:
        stops = set(setting.get("stop_token_ids") or ()) | _ends(eos)
        early = [j for j, t in enumerate(tokens[:m]) if t in stops]
        if early:
            found.append(f"stop token {tokens[early[0]]} at position {early[0]} before min_tokens={m}")
        elif r.finish_reason == "stop" and r.output_tokens <= m:
            found.append(f"stopped after {r.output_tokens} tokens, before min_tokens={m}")
    allowed = setting.get("allowed_token_ids")
    if allowed:
        outside = [t for t in tokens if t not in set(allowed)]
        if outside:
            found.append(f"{len(outside)} tokens outside allowed_token_ids (first {outside[0]})")
    if setting.get("logprobs") is not None and len(r.logprobs) != r.output_tokens:
        found.append(f"{len(r.logprobs)} logprobs for {r.output_tokens} tokens")
    if setting.get("prompt_logprobs") is not None and len(r.prompt_logprobs) != r.prompt_tokens - 1:
        found.append(f"{len(r.prompt_logprobs)} prompt logprobs for {r.prompt_tokens} prompt tokens")
    return found


def problems(kinds: list[tuple[str, dict]], run: RunResult, control: RunResult | None, plain: RunResult | None,
             prompt_ids: list[str], eos, decode: Callable[[list[int]], str] | None,
             greedy: bool, limit: int | None = None) -> list[str]:
    """Every request-boundary problem of the run, one line per kind of request and check.
    ``kinds``: (name, resolved sampling) of each prompt set, in run order; ``eos``: the EOS id (or
    ids) the run ended requests at; ``greedy``: temperature 0 (the plain-cell oracle holds only then); ``limit``: the cell's own
    max_tokens, under which a request of a kind that changed nothing emits the plain cell's first
    ``limit`` tokens (None: all of them)."""
    count = len(run.requests)
    n = count // max(len(kinds), 1)
    found: list[str] = []
    for k, (name, setting) in enumerate(kinds):
        wrong: list[str] = []
        exercised = 0
        for j in range(n):
            i = k * n + j
            r = run.requests[i]
            said = _settings(r, setting, eos)
            if control is not None and len(control.requests) == count:
                said += _against_control(r, control.requests[i])
            whole = plain.requests[j].output_token_ids if plain is not None and j < len(plain.requests) else None
            if whole is not None and greedy and not any(setting.get(key) for key in SHAPING):
                said += _against_oracle(r, whole, setting, eos, decode)
            if whole is not None and (r.output_token_ids != whole[:limit] or r.text is not None):
                exercised += 1
            if said:
                wrong.append(f"{prompt_ids[i] if i < len(prompt_ids) else i}: {'; '.join(said)}")
        if wrong:
            found.append(f"{name}: {len(wrong)} of {n} requests wrong (first {wrong[0]})")
        if plain is not None and greedy and n and not exercised:
            found.append(f"{name}: not exercised: every request emitted what it emits without the setting, so "
                         f"this cell cannot see it on this workload")
    return found
