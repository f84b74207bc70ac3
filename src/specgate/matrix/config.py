"""Pairings file (TOML) -> validated pairing matrix.

A pairings file has an optional ``[defaults]`` table and one ``[[pairing]]`` table per
draft/target pairing. Every pairing field may be set in ``[defaults]``. Relative model paths
are resolved against the pairings file's folder; anything else is taken as a hub id.
See docs/pairings.md for the full field list.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from specgate.core.tolerances import REMOVED_TOLERANCES, TOLERANCES
from specgate.matrix import features as features_mod
from specgate.matrix import vllm_accepts
from specgate.matrix import prompts as prompt_sets
from specgate.matrix.conditions import (DRAFT_METHODS, DRAFTLESS_METHODS, METHODS, RUN_MODES, Matrix, Pairing,
                                        name_controls)
from specgate.matrix.errors import ConfigError, did_you_mean

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*(-[A-Za-z0-9_.]+)*$")


_FIELDS = {f.name: f for f in dataclasses.fields(Pairing) if f.name != "control_name"}


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Matrix:
    """Read and validate a pairings file; ``overrides`` replace fields in every pairing."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pairings file not found (pass --specgate-config PATH or set "
                          f"specgate_config in your pytest ini)")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(doc, path, overrides)


def parse(doc: dict[str, Any], path: Path, overrides: dict[str, Any] | None = None) -> Matrix:
    unknown = set(doc) - {"defaults", "pairing"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level table(s) {sorted(unknown)}; "
                          f"expected [defaults] and [[pairing]] entries")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: [defaults] must be a table")
    entries = doc.get("pairing", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no [[pairing]] entries; add at least one")
    pairings = []
    for index, entry in enumerate(entries, 1):
        where = f"{path}: pairing {entry.get('name', '?')!r} (entry {index})"
        pairings.append(_pairing({**defaults, **entry, **(overrides or {})}, where, path.parent))
    seen: dict[str, int] = {}
    for i, p in enumerate(pairings, 1):
        if p.name in seen:
            raise ConfigError(f"{path}: pairing name {p.name!r} is used by entries {seen[p.name]} and {i}; "
                              f"names must be unique")
        seen[p.name] = i
    threads = {p.threads for p in pairings}
    if len(threads) > 1:
        raise ConfigError(f"{path}: field 'threads' differs between pairings ({sorted(threads)}); torch's thread "
                          f"count is one per process (engines are timed beside each other): set it once in [defaults]")
    return Matrix(path, tuple(name_controls(pairings)))


def _pairing(raw: dict[str, Any], where: str, base: Path) -> Pairing:
    for key in raw:
        if key not in _FIELDS:
            raise ConfigError(f"{where}: unknown field {key!r}{did_you_mean(key, _FIELDS)}; known fields: "
                              f"{', '.join(sorted(_FIELDS))}")
    for key in ("name", "target", "method", "k"):
        if key not in raw:
            raise ConfigError(f"{where}: missing required field {key!r}")
    v = _Validator(where, raw)
    name = v.string("name")
    if not NAME_RE.match(name):
        raise ConfigError(f"{where}: field 'name': {name!r} must be letters, digits, '.', '_' and single '-'")
    method, draft = _method_and_draft(v, raw, where)
    ks = _positive_ints(raw["k"], "k", where)
    if len(set(ks)) != len(ks):
        raise ConfigError(f"{where}: field 'k': repeated values in {ks!r}")
    modes = raw.get("modes", ["sequential"])
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, list) or not modes or any(m not in RUN_MODES for m in modes):
        raise ConfigError(f"{where}: field 'modes': must be a list drawn from {list(RUN_MODES)}, got {modes!r}")
    concurrency = _positive_ints(raw.get("concurrency", list(_FIELDS["concurrency"].default)), "concurrency", where)
    prompt_set, prompt_options = _prompt_set(v, where, base)
    target = v.string("target")
    p = Pairing(
        name=name, target=_model_ref(target, base, f"{where}: field 'target'"), method=method, k=tuple(ks),
        draft=_model_ref(draft, base, f"{where}: field 'draft'") if draft else None,
        target_name=v.string("target_name") if "target_name" in raw else _short_name(target),
        prompt_set=prompt_set, prompt_options=prompt_options, num_prompts=v.integer("num_prompts", minimum=1),
        max_new_tokens=v.integer("max_new_tokens", minimum=1), temperature=v.number("temperature", minimum=0.0),
        top_p=v.number("top_p", minimum=0.0), top_k=v.integer("top_k", minimum=-1),
        seed=v.integer("seed", minimum=0), ignore_eos=v.boolean("ignore_eos"), instruct=v.boolean("instruct"),
        dtype=v.string("dtype"), modes=tuple(modes), concurrency=tuple(concurrency), rounds=v.integer("rounds", minimum=1),
        paired_control=v.boolean("paired_control"), machine_reference=v.boolean("machine_reference"),
        threads=v.integer("threads", minimum=0), engine=v.table("engine"), speculative=_speculative(v, where),
        sampling=_sampling(v, where),
        tolerances=_tolerances(v, where), features=_features(raw.get("features", []), where),
        works_around=_works_around(raw.get("works_around", []), where),
    )
    if not 0.0 < p.top_p <= 1.0:
        raise ConfigError(f"{where}: field 'top_p': must be in (0, 1], got {p.top_p!r}")
    if not NAME_RE.match(p.target_name):
        raise ConfigError(f"{where}: field 'target_name': {p.target_name!r} must be letters, digits, '.', '_' and single '-'")
    return p


def _method_and_draft(v: _Validator, raw: dict[str, Any], where: str) -> tuple[str, str | None]:
    method = v.string("method")
    if method not in METHODS:
        accepted = vllm_accepts.methods()
        if accepted is None or method not in accepted:
            known = METHODS | (accepted or frozenset())
            raise ConfigError(f"{where}: field 'method': unknown method {method!r}{did_you_mean(method, known)}; "
                              f"known: {', '.join(sorted(known))}")
    draft = v.string("draft") if raw.get("draft") is not None else None
    if method in DRAFT_METHODS and draft is None:
        raise ConfigError(f"{where}: field 'draft': method {method!r} needs a draft model (path or hub id)")
    if method in DRAFTLESS_METHODS and draft is not None:
        raise ConfigError(f"{where}: field 'draft': method {method!r} uses no draft model; remove 'draft'")
    return method, draft


def _positive_ints(value: Any, key: str, where: str) -> list[int]:
    """A positive integer or a non-empty list of them (k, concurrency)."""
    found = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(found, list) or not found
            or any(not isinstance(x, int) or isinstance(x, bool) or x <= 0 for x in found)):
        raise ConfigError(f"{where}: field {key!r}: must be a positive integer or a non-empty list of them, "
                          f"got {value!r}")
    return found


def _tolerances(v: _Validator, where: str) -> dict[str, float]:
    tolerances = v.table("tolerances")
    for key, value in tolerances.items():
        if key in REMOVED_TOLERANCES:
            raise ConfigError(f"{where}: field 'tolerances': {key!r} was removed: {REMOVED_TOLERANCES[key]}; "
                              f"remove it from the file")
        if key not in TOLERANCES:
            raise ConfigError(f"{where}: field 'tolerances': unknown key {key!r}{did_you_mean(key, TOLERANCES)}; "
                              f"known: {', '.join(TOLERANCES)}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{where}: field 'tolerances.{key}' ({TOLERANCES[key].meaning}): must be a number "
                              f">= 0, got {value!r}")
    return {k: float(x) for k, x in tolerances.items()}


def _speculative(v: _Validator, where: str) -> dict[str, Any]:
    speculative = v.table("speculative")
    reserved = {"method", "model", "num_speculative_tokens"} & set(speculative)
    if reserved:
        raise ConfigError(f"{where}: field 'speculative': {sorted(reserved)} are set from 'method', 'draft' "
                          f"and 'k'; remove them from 'speculative'")
    return speculative


# SamplingParams set by a pairing field of their own.
SAMPLING_FIELDS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed",
                   "max_tokens": "max_new_tokens", "ignore_eos": "ignore_eos"}


def _sampling(v: _Validator, where: str) -> dict[str, Any]:
    sampling = v.table("sampling")
    own = {key: SAMPLING_FIELDS[key] for key in sampling if key in SAMPLING_FIELDS}
    if own:
        raise ConfigError(f"{where}: field 'sampling': {', '.join(f'{k!r} is set by the field {f!r}' for k, f in own.items())}; "
                          f"move it out of 'sampling'")
    for key in features_mod.TOKEN_TEXTS:
        texts = sampling.get(key)
        if texts is not None and (not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts)):
            raise ConfigError(f"{where}: field 'sampling.{key}': must be a list of non-empty strings, got {texts!r}")
    return sampling


def _prompt_set(v: _Validator, where: str, base: Path) -> tuple[str, dict[str, Any]]:
    prompt_set = v.string("prompt_set")
    if prompt_set not in prompt_sets.SETS:
        raise ConfigError(f"{where}: field 'prompt_set': unknown prompt set {prompt_set!r}"
                          f"{did_you_mean(prompt_set, prompt_sets.SETS)}; available: "
                          f"{', '.join(prompt_sets.available())}")
    prompt_options = v.table("prompt_options")
    for key, value in prompt_options.items():
        if key not in prompt_sets.OPTIONS:
            raise ConfigError(f"{where}: field 'prompt_options': unknown key {key!r}"
                              f"{did_you_mean(key, prompt_sets.OPTIONS)}; known: "
                              f"{', '.join(sorted(prompt_sets.OPTIONS))}")
        if key in prompt_sets.INTEGER_OPTIONS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: field 'prompt_options.{key}': must be an integer >= 1, got {value!r}")
        elif not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: field 'prompt_options.{key}': must be a non-empty string, got {value!r}")
    if "path" in prompt_options:  # data files, like models, are relative to the pairings file
        prompt_options["path"] = str((base / Path(prompt_options["path"]).expanduser()).resolve())
    return prompt_set, prompt_options


def _features(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """A list of feature names, or a table of name -> engine arguments over the feature's own
    (for example a smaller KV cache for preemption with larger models)."""
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        if len(set(raw)) != len(raw):
            raise ConfigError(f"{where}: field 'features': repeated names in {raw!r}")
        raw = {name: {} for name in raw}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{where}: field 'features': must be a list of feature names or a table of "
                          f"name = {{ engine arguments }}, got {raw!r}")
    bad = features_mod.unknown(raw)
    if bad:
        hints = "".join(did_you_mean(name, features_mod.FEATURES) for name in bad)
        raise ConfigError(f"{where}: field 'features': unknown feature(s) {bad}{hints}; known: "
                          f"{', '.join(features_mod.FEATURES)}")
    return {name: dict(value) for name, value in raw.items()}


def _works_around(raw: Any, where: str) -> tuple[str, ...]:
    """Keys of known vLLM defects (engines/known_defects.py) to work around in this pairing's cells."""
    known = features_mod.KNOWN_DEFECT_KEYS
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw) or len(set(raw)) != len(raw):
        raise ConfigError(f"{where}: field 'works_around': must be a list of distinct known-defect keys, got {raw!r}")
    bad = [key for key in raw if key not in known]
    if bad:
        hints = "".join(did_you_mean(key, known) for key in bad)
        raise ConfigError(f"{where}: field 'works_around': unknown known-defect key(s) {bad}{hints}; known "
                          f"(docs/known-defects.md): {', '.join(known)}")
    return tuple(raw)


class _Validator:
    """Typed field access that falls back to the Pairing default and names the field on error."""

    def __init__(self, where: str, raw: dict[str, Any]):
        self.where, self.raw = where, raw

    def _get(self, key: str, kinds: tuple[type, ...], what: str):
        f = _FIELDS[key]
        if key not in self.raw:
            return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = self.raw[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ConfigError(f"{self.where}: field {key!r}: must be {what}, got {value!r}")
        return value

    def string(self, key: str) -> str:
        value = self._get(key, (str,), "a string")
        if not value:
            raise ConfigError(f"{self.where}: field {key!r}: must not be empty")
        return value

    def integer(self, key: str, minimum: int) -> int:
        value = self._get(key, (int,), "an integer")
        if value < minimum:
            raise ConfigError(f"{self.where}: field {key!r}: must be >= {minimum}, got {value!r}")
        return value

    def number(self, key: str, minimum: float) -> float:
        value = float(self._get(key, (int, float), "a number"))
        if value < minimum:
            raise ConfigError(f"{self.where}: field {key!r}: must be >= {minimum}, got {value!r}")
        return value

    def boolean(self, key: str) -> bool:
        return self._get(key, (bool,), "true or false")

    def table(self, key: str) -> dict[str, Any]:
        return dict(self._get(key, (dict,), "a table"))


def _model_ref(ref: str, base: Path, where: str) -> str:
    """Paths (starting with '.', '/' or '~') resolve against the pairings file; anything else is a hub id."""
    if not ref.startswith((".", "/", "~")):
        if (base / ref / "config.json").is_file():
            raise ConfigError(f"{where}: {ref!r} is read as a hub id, but it is also a model folder next to the "
                              f"pairings file: write './{ref}' for the folder (paths start with '.', '/' or '~')")
        return ref
    path = (base / Path(ref).expanduser()).resolve()
    if not (path / "config.json").is_file():
        raise ConfigError(f"{where}: no model at {path} (no config.json there); fix the path, which is "
                          f"relative to the pairings file's folder, or give a hub id")
    return str(path)


def _short_name(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", ref.rstrip("/").split("/")[-1]) or "target"
