"""Named prompt sets and seed-stable samples of them.

``code``: code-completion prompts cut from CPython standard-library files that the fixture
models never saw in training (written by models/train_fixtures.py, shipped in the package).
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from importlib import resources


class PromptSetError(ValueError):
    """A prompt set cannot be loaded or sampled; the message says which and how to fix it."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


@functools.cache
def _code() -> tuple[Prompt, ...]:
    lines = resources.files("specgate").joinpath("data/code_prompts.jsonl").read_text(encoding="utf-8")
    return tuple(Prompt(row["id"], row["prompt"]) for row in map(json.loads, lines.splitlines()) if row)


SETS = {"code": _code}


def available() -> list[str]:
    return sorted(SETS)


def load(name: str, num_prompts: int, seed: int) -> list[Prompt]:
    """The first ``num_prompts`` of a seeded shuffle: a larger sample extends a smaller one."""
    if name not in SETS:
        raise PromptSetError(f"unknown prompt set {name!r}; available: {', '.join(available())}")
    pool = SETS[name]()
    if not pool:
        raise PromptSetError(f"prompt set {name!r} is empty")
    if num_prompts > len(pool):
        raise PromptSetError(f"prompt set {name!r} has {len(pool)} prompts; num_prompts={num_prompts} asks "
                             f"for more: lower num_prompts")
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    return [pool[i] for i in order[:num_prompts]]
