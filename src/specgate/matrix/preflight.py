"""Checks that need no engine, run before any is built: vLLM takes every pass-through argument
and can build the method's draft, the models can be found, a draft model
shares the target's vocabulary, the attention backend takes the head sizes, the prompt set
loads and every prompt fits the context. An engine that fails minutes into a sweep, with a
traceback from deep inside vLLM, is what these checks exist to prevent.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from specgate.matrix import features as features_mod
from specgate.matrix import heads
from specgate.matrix import prompts as prompt_sets
from specgate.matrix import vllm_accepts
from specgate.matrix.conditions import Pairing
from specgate.matrix.hub import HubError, model_dir, tokenizer


class PreflightError(ValueError):
    """A pairing cannot run; the message names the pairing, what is wrong and how to fix it."""

    def __init__(self, reason: str, pairing: str | None = None):
        super().__init__(reason if pairing is None else f"pairing {pairing!r}: {reason}")
        self.reason, self.pairing = reason, pairing


@functools.lru_cache(maxsize=64)
def model_config(folder: Path) -> dict:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PreflightError(f"{folder}/config.json cannot be read: {exc}") from None
    return cfg.get("text_config", cfg)  # multimodal configs nest the language model's


def head_dim(cfg: dict) -> int | None:
    if cfg.get("head_dim"):
        return int(cfg["head_dim"])
    if cfg.get("hidden_size") and cfg.get("num_attention_heads"):
        return int(cfg["hidden_size"]) // int(cfg["num_attention_heads"])
    return None


def _cpu_backend():
    """vLLM's CPU attention backend when this machine runs vLLM on CPU, else None."""
    if not vllm_accepts.on_cpu():
        return None
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend
    except Exception:  # noqa: BLE001 - a vLLM without it leaves the check to vLLM itself
        return None
    return CPUAttentionBackend


def check_head_size(folder: Path, role: str, backend=None) -> None:
    backend = backend if backend is not None else _cpu_backend()
    size = head_dim(model_config(folder))
    if backend is None or size is None or backend.supports_head_size(size):
        return
    raise PreflightError(f"{role} {folder.name} has head_dim={size}, which vLLM's CPU attention backend does not "
                         f"support (it takes {', '.join(map(str, backend.get_supported_head_sizes()))}); use a "
                         f"model with a supported head size or run on a GPU")


def check_draft_is_a_model(draft: Path) -> None:
    """A draft_model draft is a whole language model; a speculator head given as one fails deep in
    transformers (a missing tokenizer, a missing embedding) instead of naming the method."""
    found = heads.head_method(draft, model_config(draft))
    if found:
        method, shown = found
        raise PreflightError(f"the draft {draft.name} is a speculator head for method {method!r} ({shown}), "
                             f"not a whole model: use method = '{method}'")


def check_head(p: Pairing, target: Path, draft: Path | None) -> None:
    """A speculator head against its method and target (matrix/heads.py); an MTP target declares
    MTP layers."""
    target_cfg = model_config(target)
    if p.method == "mtp" and draft is None and not heads.mtp_layers(target_cfg):
        raise PreflightError(f"method 'mtp' drafts with the target's own MTP layers, and {target.name}'s config.json "
                             f"declares none (num_nextn_predict_layers): use a target trained with them, or "
                             f"another method")
    if p.method not in heads.CHECKED_METHODS or draft is None:
        return
    try:
        heads.check(p.method, draft, model_config(draft), target_cfg, max(p.k))
    except heads.HeadError as exc:
        raise PreflightError(f"draft {draft.name}: {exc}") from None


# vLLM picks the method from words in the draft's path, over the one the pairing names, unless the
# pairing names one of these (config/speculative.py, "Automatically detect the method").
PATH_WORDS = (("eagle-", "eagle"), ("eagle3", "eagle3"), ("dflash", "dflash"), ("dspark", "dspark"))
PATH_WORDS_IGNORED_FOR = {"eagle", "eagle3", "dflash", "dspark"}


def check_method_kept(p: Pairing) -> None:
    """A draft whose path holds 'eagle-' or 'eagle3' silently turns a draft_model pairing into EAGLE."""
    if p.draft is None or p.method in PATH_WORDS_IGNORED_FOR:
        return
    for word, method in PATH_WORDS:
        if word in p.draft.lower():
            raise PreflightError(f"the draft path {p.draft!r} contains {word!r}, so vLLM would run it as method "
                                 f"{method!r}, not {p.method!r}: rename the folder, or set method = '{method}'")


def check_vocabulary(target: Path, draft: Path) -> None:
    """A draft model proposes token ids the target scores: both must mean the same tokens."""
    t_size, d_size = model_config(target).get("vocab_size"), model_config(draft).get("vocab_size")
    if t_size != d_size:
        raise PreflightError(f"the draft ({draft.name}, vocab_size {d_size}) and the target ({target.name}, "
                             f"vocab_size {t_size}) have different vocabularies; a draft model must use the "
                             f"target's tokenizer")
    t_vocab, d_vocab = tokenizer(target).get_vocab(), tokenizer(draft).get_vocab()
    if t_vocab != d_vocab:
        differ = sorted(set(t_vocab.items()) ^ set(d_vocab.items()), key=lambda kv: kv[1])
        raise PreflightError(f"the draft ({draft.name}) and the target ({target.name}) have different tokenizers "
                             f"({len(differ)} token/id pairs differ, e.g. {differ[0]!r}); a draft model must use "
                             f"the target's tokenizer")


@functools.lru_cache(maxsize=32)
def _too_long(target_ref: str, prompt_set: str, options_json: str, instruct: bool) -> tuple[str, ...]:
    options = json.loads(options_json)
    try:
        target = model_dir(target_ref, "target")
        if target is None:
            raise prompt_sets.PromptSetError(f"prompt_options.max_prompt_tokens needs the target's tokenizer, and "
                                             f"{target_ref!r} is not downloaded yet: download it first")
        tok = tokenizer(target)
    except HubError as exc:
        raise prompt_sets.PromptSetError(str(exc)) from None
    found = prompt_sets.everything(prompt_set, options)
    texts = prompt_sets.render(list(found), prompt_set, tok, instruct, options.get("system_prompt"))
    limit = options["max_prompt_tokens"]
    return tuple(x.id for x, text in zip(found, texts) if len(tok(text, add_special_tokens=True)["input_ids"]) > limit)


def prompt_sample(p: Pairing) -> tuple[list[prompt_sets.Prompt], tuple[str, ...]]:
    """The pairing's prompts and the ids max_prompt_tokens dropped from its set (before sampling,
    so num_prompts stays what the file asks). Raises prompt_sets.PromptSetError."""
    dropped = (_too_long(p.target, p.prompt_set, json.dumps(p.prompt_options, sort_keys=True), p.instruct)
               if "max_prompt_tokens" in p.prompt_options else ())
    return prompt_sets.for_pairing(p, frozenset(dropped)), dropped


def check_prompts(p: Pairing, target: Path | None) -> None:
    try:
        sample, _ = prompt_sample(p)
        if target is None:
            return
        tok = tokenizer(target)
        texts = prompt_sets.render_for(p, sample, tok)
    except prompt_sets.PromptSetError as exc:
        raise PreflightError(str(exc)) from None
    limit = p.engine.get("max_model_len") or model_config(target).get("max_position_embeddings")
    if not limit:
        return
    for prompt, text in zip(sample, texts):
        n = len(tok(text, add_special_tokens=True)["input_ids"])
        if n + p.max_new_tokens > limit:
            raise PreflightError(f"prompt {prompt.id!r} of prompt set {p.prompt_set!r} has {n} tokens; with "
                                 f"max_new_tokens={p.max_new_tokens} it needs {n + p.max_new_tokens} > max_model_len "
                                 f"{limit}: raise engine.max_model_len, lower max_new_tokens, or drop the longer prompts "
                                 f"with prompt_options.max_prompt_tokens = {max(1, limit - p.max_new_tokens)}")


def check_vllm_accepts(p: Pairing) -> None:
    """The pass-through tables hold only names the installed vLLM takes (a typo found now, not
    after the control engine has run), and vLLM can build the method's draft. specgate's own
    feature table is checked against vLLM once, by tests/matrix/test_vllm_accepts.py."""
    tables = [("engine", "engine", p.engine.keys()), ("speculative", "speculative", p.speculative.keys())]
    tables += [(f"features.{name}", "engine", extra.keys()) for name, extra in p.features.items()]
    for where, table, keys in tables:
        unknown = vllm_accepts.unknown_keys(table, keys)
        if unknown:
            raise PreflightError(f"field {where!r}: the installed vLLM has no {table} argument {', '.join(unknown)}; "
                                 f"fix the name (vLLM's {_VLLM_TYPES[table]} lists them)")
    sampling = {k: v for k, v in p.sampling.items() if k not in features_mod.TOKEN_TEXTS}
    unknown = vllm_accepts.unknown_keys("sampling", sampling.keys())
    if unknown:
        raise PreflightError(f"field 'sampling': the installed vLLM's SamplingParams has no {', '.join(unknown)}; "
                             f"fix the name (or use {', '.join(features_mod.TOKEN_TEXTS)} for tokens named by text)")
    refused = vllm_accepts.sampling_problem({"temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k,
                                             "max_tokens": p.max_new_tokens, **sampling})
    if refused:
        raise PreflightError(f"field 'sampling': vLLM's SamplingParams refuses it: {refused}")
    problem = vllm_accepts.method_problem(p.method)
    if problem:
        raise PreflightError(problem)
    problem = vllm_accepts.schedule_problem(p.method, p.speculative)
    if problem:
        raise PreflightError(problem)


_VLLM_TYPES = {"engine": "EngineArgs", "speculative": "SpeculativeConfig", "sampling": "SamplingParams"}


def check(p: Pairing) -> None:
    """Every check for one pairing; raises PreflightError naming the pairing and every problem found
    (the draft and the prompts are checked even when the target has a problem: one run of validate
    shows all that is wrong)."""
    problems: list[str] = []

    def attempt(step, *args):
        """step(*args), or FAILED with its problem kept."""
        try:
            return step(*args)
        except PreflightError as exc:
            problems.append(exc.reason)
        except HubError as exc:
            problems.append(str(exc))
        return FAILED

    attempt(check_vllm_accepts, p)
    attempt(check_method_kept, p)
    target = attempt(model_dir, p.target, "target")
    if target not in (None, FAILED) and attempt(check_head_size, target, "target") is FAILED:
        target = FAILED
    draft = attempt(model_dir, p.draft, "draft") if p.draft else None
    local_target = None if target is FAILED else target  # None also for a hub id vLLM will fetch
    if p.method == "draft_model" and draft not in (None, FAILED):
        # Each step needs the one before: a head given as a draft has no tokenizer to compare.
        if attempt(check_draft_is_a_model, draft) is not FAILED and \
                attempt(check_head_size, draft, "draft") is not FAILED and local_target is not None:
            attempt(check_vocabulary, local_target, draft)
    elif p.method != "draft_model" and local_target is not None and draft is not FAILED:
        attempt(check_head, p, local_target, draft)
    attempt(check_prompts, p, local_target)
    if len(problems) == 1:
        raise PreflightError(problems[0], p.name)
    if problems:
        raise PreflightError(f"{len(problems)} problems: " + "; ".join(f"({i}) {x}" for i, x in enumerate(problems, 1)),
                             p.name)


FAILED = object()  # what check's steps give when they found a problem


class Checked:
    """Each pairing's preflight result, checked once per session: None, or why it cannot run."""

    def __init__(self):
        self._found: dict[str, str | None] = {}
        self._said_dropped: set[str] = set()

    def problem(self, p: Pairing) -> str | None:
        if p.name not in self._found:
            try:
                check(p)
                self._found[p.name] = None
            except PreflightError as exc:
                self._found[p.name] = f"specgate: {exc}"
        return self._found[p.name]

    def problems(self, conditions) -> list[str]:
        """The problems of these conditions' pairings, each pairing once."""
        pairings = {c.pairing.name: c.pairing for c in conditions}
        return [found for found in map(self.problem, pairings.values()) if found]

    def prompts(self, condition, log) -> list[prompt_sets.Prompt]:
        """The condition's prompts; the first time a pairing drops prompts too long for it, one
        ``log`` line says which (prompts.PromptSetError when the set cannot be read)."""
        p = condition.pairing
        found, dropped = prompt_sample(p)
        if dropped and p.name not in self._said_dropped:
            self._said_dropped.add(p.name)
            log(f"pairing {p.name!r}: {len(dropped)} prompts of set {p.prompt_set!r} are longer than "
                f"max_prompt_tokens={p.prompt_options['max_prompt_tokens']} and were dropped "
                f"({', '.join(dropped[:3])}{', ...' if len(dropped) > 3 else ''})")
        return copies(found, condition.feature_setting)


def copies(found: list[prompt_sets.Prompt], feature) -> list[prompt_sets.Prompt]:
    """The prompts as a feature cell runs them: the set (its first max_prompts) once per copy
    (features.Feature.copies)."""
    found = found[:feature.max_prompts] if feature.max_prompts else found
    if feature.repeat_prompts:
        return found + [prompt_sets.Prompt(f"{x.id}#again", x.text) for x in found]
    return [prompt_sets.Prompt(f"{x.id}#{c}" if c else x.id, x.text) for c in range(feature.copies) for x in found]
