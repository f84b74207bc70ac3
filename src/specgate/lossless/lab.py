"""Whole vLLM engines sampled at temperature > 0 and judged against the target's exact
distribution (target_distribution.py; for hub targets too large to enumerate, against the
no-speculation engine's samples): the engines of a lossless pairings file, built one at a time,
and the exact distributions, computed once per prompt and setting. The shipped suite
(specgate.suites.test_lossless) and this repository's planted-bug tests use it."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from specgate.engines.pool import EnginePool
from specgate.lossless import logprobs, whole_engine
from specgate.lossless.target_distribution import (transformers_forward, transformers_sequence_logits,
                                                    two_token_distribution)
from specgate.matrix import config, prompts

SETTINGS = {s.name: s for s in whole_engine.SETTINGS}


class LosslessLab:
    """Engines (one per condition, built once) and exact distributions (one per prompt x setting)."""

    def __init__(self, path: Path, samples: int):
        self.conditions = {c.id: c for c in config.load(path).conditions()}
        # One engine alive at a time: in one process vLLM's engines share the distributed state,
        # which tearing one down (or losing one to a crash) takes from the others.
        self.samples, self.pool = samples, EnginePool(stage_timers=False)

    def prompt_ids(self, cid: str, setting: str | None = None) -> list[int]:
        """The pairing's first prompt, or the setting's own (whole_engine.Setting.prompt)."""
        return self.engine(cid).get_tokenizer().encode(self._prompt_text(cid, setting))

    def _prompt_text(self, cid: str, setting: str | None) -> str:
        c = self.conditions[cid]
        own = SETTINGS[setting].prompt if setting else None
        return own or prompts.render_for(c.pairing, prompts.for_pairing(c.pairing)[:1], None)[0]

    def engine(self, cid: str):
        return self.pool.get(self.conditions[cid]).llm

    def sample(self, cid: str, setting: str, seed: int = 1000, samples: int | None = None) -> whole_engine.Sample:
        llm = self.engine(cid)
        try:
            return whole_engine.sample_pairs(llm, self.prompt_ids(cid, setting), SETTINGS[setting],
                                             samples or self.samples,
                                         seed=seed)
        except BaseException:
            self.pool.current.broken = True  # an engine that raised mid-step is rebuilt, not reused
            raise

    @functools.cache
    def exact(self, target: str, prompt: tuple[int, ...], setting: str):
        return two_token_distribution(self._forward(target), list(prompt), SETTINGS[setting], **self._tokens(target))

    def visibility(self, cid: str, setting: str) -> tuple[float, float, str] | None:
        """How far ignoring the setting at the speculative position moves what the cell tests, and the
        smallest shift the cell detects with probability 0.99 (whole_engine.visibility); None for the
        plain setting (nothing to switch off) or a target too large to enumerate. No engine: the
        target's own tokenizer reads the prompt, so cells on one target and prompt share the figures."""
        s, target = SETTINGS[setting], self.conditions[cid].pairing.target
        if s.off is None or not Path(target).is_dir():
            return None
        return self._visibility(target, self._prompt_text(cid, setting), setting)

    @functools.cache
    def _visibility(self, target: str, text: str, setting: str) -> tuple[float, float, str]:
        s, prompt = SETTINGS[setting], tuple(self._tokenizer(target).encode(text))
        ignored = two_token_distribution(self._forward(target), list(prompt), s, second_under=s.off,
                                         **self._tokens(target))
        return whole_engine.visibility(self.exact(target, prompt, setting), ignored, self.samples)

    @functools.cache
    def _forward(self, target: str):
        return transformers_forward(target)

    @functools.cache
    def _tokenizer(self, target: str):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(target)

    def _tokens(self, target: str) -> dict:
        """The target tokenizer's encoder and EOS id, for settings with token masks."""
        tokenizer = self._tokenizer(target)
        return {"encode": lambda text: tokenizer.encode(text, add_special_tokens=False), "eos": tokenizer.eos_token_id}

    def judge(self, cid: str, setting: str, samples: int | None = None) -> tuple[whole_engine.Judgement, whole_engine.Sample]:
        sample = self.sample(cid, setting, samples=samples)
        # A hub model is too large to enumerate: judged against the plain engine's samples instead.
        if not Path(self.conditions[cid].pairing.target).is_dir():
            return whole_engine.judge_two_sample(self.reference(cid, setting), sample), sample
        return self.against_exact(cid, setting, sample), sample

    def against_exact(self, cid: str, setting: str, sample: whole_engine.Sample) -> whole_engine.Judgement:
        """``sample`` (of ``cid`` under ``setting``) judged against the target's exact distribution."""
        target = self.conditions[cid].pairing.target
        return whole_engine.judge_exact(self.exact(target, tuple(self.prompt_ids(cid, setting)), setting), sample)

    @functools.cache
    def reference(self, cid: str, setting: str) -> whole_engine.Sample:
        control = self.conditions[cid].control
        self.conditions.setdefault(control.id, control)
        return self.sample(control.id, setting, seed=2000)

    def logprobs_engine(self, cid: str, mode: str):
        """The cell's engine in logprobs ``mode`` (vLLM's default, raw, is the cell's own engine). Build
        it before entering known_defects.reference_path: its warm-up calls the kernels the work-arounds
        replace."""
        c = self.conditions[cid]
        if c.pairing.engine.get("logprobs_mode", "raw_logprobs") != mode:
            c = dataclasses.replace(c, pairing=dataclasses.replace(c.pairing, engine={**c.pairing.engine,
                                                                                      "logprobs_mode": mode}))
        return self.pool.get(c).llm

    def logprobs(self, cid: str, mode: str, requests: int = 16, max_tokens: int = 24) -> logprobs.Verdict | None:
        """``requests`` seeded continuations of the cell's prompt at temperature > 0 (logprobs.SETTING),
        from the cell's engine in logprobs ``mode``, judged against the target's own logprobs
        (logprobs.judge); None for a target too large to run through transformers here."""
        target = self.conditions[cid].pairing.target
        if not Path(target).is_dir():
            return None
        llm = self.logprobs_engine(cid, mode)
        prompt = self._tokenizer(target).encode(self._prompt_text(cid, None))
        try:
            emitted = logprobs.sample(llm, [prompt] * requests, max_tokens, seed=3000)
        except BaseException:
            self.pool.current.broken = True
            raise
        return logprobs.judge(emitted, self._sequence_logits(target), mode)

    @functools.cache
    def _sequence_logits(self, target: str):
        return transformers_sequence_logits(target)

    def close(self):
        self.pool.close()


