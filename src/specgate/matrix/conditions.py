"""The matrix as data: a pairing, a condition (one cell: pairing x method x k x run mode x feature),
its control, and the matrix's conditions in run order (pure; config.py reads them from a file)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from specgate.core.tolerances import FOR_CONTROLS
from specgate.matrix import features as features_mod
from specgate.matrix.errors import UnknownPairings, did_you_mean

# vLLM's SpeculativeConfig.method values that specgate knows how to pass through.
DRAFT_METHODS = {"draft_model", "eagle", "eagle3", "medusa", "mlp_speculator", "dflash"}
DRAFTLESS_METHODS = {"ngram", "ngram_gpu", "suffix"}
OPTIONAL_DRAFT_METHODS = {"mtp"}
METHODS = DRAFT_METHODS | DRAFTLESS_METHODS | OPTIONAL_DRAFT_METHODS
# A model proposes at every step; n-gram and suffix lookups only where the context matches.
DRAFTS_EVERY_STEP = DRAFT_METHODS | OPTIONAL_DRAFT_METHODS
CONTROL_METHOD = "none"
# Proposers that keep state across requests: suffix decoding drafts from a tree of every finished
# response (arctic-inference's global cache, vLLM's suffix_decoding_max_cached_requests), so what a
# request drafts depends on the requests its engine ran before.
CROSS_REQUEST_METHODS = {"suffix"}


RUN_MODES = ("sequential", "batch", "arrivals", "serving")


@dataclass(frozen=True)
class Pairing:
    """One draft/target pairing and the workload it is measured on."""

    name: str
    target: str
    method: str
    k: tuple[int, ...]
    draft: str | None = None
    target_name: str = ""
    prompt_set: str = "code"
    prompt_options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    num_prompts: int = 32
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    ignore_eos: bool = True
    instruct: bool = False
    dtype: str = "auto"
    modes: tuple[str, ...] = ("sequential",)
    concurrency: tuple[int, ...] = (1, 4, 16)  # serving mode: requests in flight at once
    rounds: int = 1
    # Sequential mode: time each prompt on the no-speculation engine right beside the speculative
    # one (both engines alive), so latency is judged as a paired ratio that machine drift cannot move.
    paired_control: bool = False
    # Sequential controls: time the target through transformers beside each request
    # (engines/reference_timing.py), so a slowdown in every vLLM step is seen against a vLLM-free clock.
    machine_reference: bool = False
    # torch's intra-op threads for every engine of the run (0: torch's default). One value per run:
    # the engines and the transformers reference share the process's thread pool.
    threads: int = 0
    engine: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    speculative: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # More of vLLM's SamplingParams for every request (stop, min_tokens, logprobs, ...), over the
    # fields above; features.TOKEN_TEXTS keys name tokens by their text.
    sampling: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    tolerances: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    # Feature cells (matrix/features.py) at the largest k: name -> engine arguments over the feature's own.
    features: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False, compare=False)
    # Known vLLM defects (engines/known_defects.py keys) worked around while this pairing's cells run,
    # so a cell whose subject a defect hides (acceptance at temperature > 0 on vLLM-CPU) still judges it.
    works_around: tuple[str, ...] = ()
    # Set by the loader, not the file: the id stem of this pairing's no-speculation control.
    control_name: str = ""


@dataclass(frozen=True)
class Condition:
    """One cell of the matrix: a pairing at one k in one run mode (k=0, method "none": control)."""

    pairing: Pairing
    method: str
    k: int
    mode: str
    concurrency: int = 1  # serving mode only
    feature: str = ""  # a features-axis cell (features.py); "" for the plain matrix

    @property
    def is_control(self) -> bool:
        return self.method == CONTROL_METHOD

    @property
    def id(self) -> str:
        base = (f"{self.pairing.control_name}-nospec" if self.is_control
                else f"{self.pairing.name}-{self.method}-k{self.k}")
        if self.feature:
            return f"{base}+{self.feature}"
        if self.mode == "serving":
            return f"{base}-serving-c{self.concurrency}"
        return base if self.mode == "sequential" else f"{base}-{self.mode}"

    @property
    def feature_setting(self) -> features_mod.Feature:
        """What this condition's feature switches on and must satisfy (features.PLAIN for none)."""
        return features_mod.of(self.feature)

    @property
    def temperature(self) -> float:
        """The sampling temperature the engine runs with (a feature may set its own)."""
        return float(self.feature_setting.sampling.get("temperature", self.pairing.temperature))

    @property
    def works_around(self) -> tuple[str, ...]:
        """The known defects worked around while this cell runs: its pairing's and its feature's."""
        return self.pairing.works_around + self.feature_setting.works_around

    @property
    def plain(self) -> Condition:
        """The same condition with its feature off (itself when it has none)."""
        return dataclasses.replace(self, feature="", mode="sequential") if self.feature else self

    @property
    def control(self) -> Condition:
        """The no-speculation run this condition's speedup is measured against."""
        return dataclasses.replace(self, method=CONTROL_METHOD, k=0, pairing=_control_pairing(self.pairing))


def _control_pairing(p: Pairing) -> Pairing:
    # Controls are shared by every pairing with the same target and workload, so their
    # identity must not carry the draft, method or k. Timing tolerances (the file's, e.g. a
    # shared machine's 50% latency) apply to the control too; acceptance ones have nothing to judge.
    timing = {k: v for k, v in p.tolerances.items() if k in FOR_CONTROLS}
    return dataclasses.replace(p, name=p.control_name, draft=None, method=CONTROL_METHOD, k=(0,),
                               speculative={}, tolerances=timing, works_around=())


@dataclass(frozen=True)
class Matrix:
    source: Path
    pairings: tuple[Pairing, ...]

    def conditions(self) -> list[Condition]:
        """Controls first (one per target and workload), then every pairing x k x mode."""
        spec = [Condition(p, p.method, k, mode, n) for p in self.pairings for mode in p.modes
                for n in (p.concurrency if mode == "serving" else (1,)) for k in p.k]
        # Feature cells last: their checks compare with the plain cell, which has run by then.
        spec += [Condition(p, p.method, max(p.k), features_mod.FEATURES[f].mode, feature=f)
                 for p in self.pairings for f in p.features]
        controls: dict[tuple, Condition] = {}
        for c in spec:
            controls.setdefault(control_key(c.control), c.control)
        return list(controls.values()) + spec


def workload_key(p: Pairing) -> tuple:
    """What a no-speculation run depends on: same key, same control run."""
    return (p.target, p.target_name, p.prompt_set, tuple(sorted(p.prompt_options.items())), p.num_prompts, p.max_new_tokens, p.temperature,
            p.top_p, p.top_k, p.seed, p.ignore_eos, p.instruct, p.dtype, p.rounds,
            tuple(sorted((k, repr(v)) for k, v in p.engine.items())),
            tuple(sorted((k, repr(v)) for k, v in p.sampling.items())))


def control_key(c: Condition) -> tuple:
    extra = (c.feature, repr(sorted(c.pairing.features.get(c.feature, {}).items()))) if c.feature else ()
    return workload_key(c.pairing) + (c.mode, c.concurrency) + extra


def name_controls(pairings: list[Pairing]) -> list[Pairing]:
    """A control is named after its target; a target's second and later workloads (other prompts,
    sampling, ...) add the name of their first pairing. Appending a pairing never renames the
    controls before it, so their baselines keep matching."""
    names: dict[tuple, str] = {}
    for p in pairings:
        if workload_key(p) not in names:
            taken = any(key[1] == p.target_name for key in names)
            names[workload_key(p)] = f"{p.target_name}.{p.name}" if taken else p.target_name
    return [dataclasses.replace(p, control_name=names[workload_key(p)]) for p in pairings]


def select(matrix: Matrix, names: tuple[str, ...] = (), shard: tuple[int, int] | None = None,
           planned: tuple[str, ...] | None = None) -> tuple[Matrix, dict[str, int]]:
    """The pairings named (all when none), then a shard's: every count-th of them from index, or the
    pairings a plan gave the shard (``planned``, `specgate plan`); and each condition's position in
    the unsharded selection: merged shards read like one run."""
    if names:
        unknown = set(names) - {p.name for p in matrix.pairings}
        if unknown:
            hints = "".join(did_you_mean(n, [p.name for p in matrix.pairings]) for n in sorted(unknown))
            raise UnknownPairings(f"pairing(s) {sorted(unknown)}{hints} not in {matrix.source}; pairings there: "
                              f"{', '.join(p.name for p in matrix.pairings)}")
        matrix = Matrix(matrix.source, tuple(p for p in matrix.pairings if p.name in names))
    order = {c.id: i for i, c in enumerate(matrix.conditions())}
    if shard is not None:
        index, count = shard
        mine = (matrix.pairings[index::count] if planned is None
                else tuple(p for p in matrix.pairings if p.name in planned))
        matrix = Matrix(matrix.source, mine)
    return matrix, order


def at_k(conditions: list[Condition], ks: tuple[int, ...]) -> list[Condition]:
    """The speculative conditions at these k and the controls they need (--specgate-k); UnknownPairings
    when no condition runs at one of them."""
    kept = [c for c in conditions if not c.is_control and c.k in ks]
    missing = sorted(set(ks) - {c.k for c in kept})
    if missing:
        raise UnknownPairings(f"no condition runs at k {', '.join(map(str, missing))}; the pairings run k "
                              f"{', '.join(map(str, sorted({c.k for c in conditions if not c.is_control})))}")
    needed = {c.control.id for c in kept}
    return [c for c in conditions if (c.is_control and c.id in needed) or (not c.is_control and c.k in ks)]


def run_order(conditions: list[Condition], key: Callable[[Condition], str]) -> list[Condition]:
    """The conditions in their order, except that those with equal keys (sharing an engine) follow
    the first of them, so each engine is built once."""
    groups: dict[str, list[Condition]] = {}
    for condition in conditions:
        groups.setdefault(key(condition), []).append(condition)
    return [c for group in groups.values() for c in group]


