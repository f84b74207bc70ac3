"""What the installed vLLM accepts, asked of vLLM itself before any engine is built: the names of
its engine arguments (vllm.LLM and EngineArgs), speculative config (SpeculativeConfig) and sampling
parameters (SamplingParams), the speculative methods its config names, and whether its model
registry can build the draft a method needs. Every answer is None without vLLM (a machine that
only validates files): the check is then left to vLLM at build time."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import typing

from specgate.matrix.errors import did_you_mean

# Methods whose draft is one fixed model class: vLLM builds them only while its model registry
# has that class (vLLM 0.32 accepts method "mlp_speculator" in SpeculativeConfig but registers no
# MLPSpeculatorPreTrainedModel, so the engine dies on its first build).
METHOD_ARCHITECTURE = {"mlp_speculator": "MLPSpeculatorPreTrainedModel", "medusa": "MedusaModel"}


@functools.lru_cache(maxsize=1)
def methods() -> frozenset[str] | None:
    """The methods the installed vLLM's SpeculativeConfig names (None without vLLM)."""
    try:
        from vllm.config.speculative import SpeculativeMethod
    except Exception:  # noqa: BLE001 - no vLLM here, or one that moved the type: specgate's list only
        return None
    return frozenset(_literal_values(SpeculativeMethod))


def _literal_values(tp) -> list:
    """The values of a Literal, also of a Literal made of other Literals (vLLM nests them)."""
    found = []
    for arg in typing.get_args(tp):
        found += _literal_values(arg) if typing.get_args(arg) else [arg]
    return found


@functools.lru_cache(maxsize=1)
def fields() -> dict[str, frozenset[str]] | None:
    """table -> the names vLLM takes there: "engine" (vllm.LLM's parameters and EngineArgs'
    fields, which is where the rest of LLM's keyword arguments go), "speculative" and "sampling"."""
    try:
        from vllm import LLM, SamplingParams
        from vllm.config.speculative import SpeculativeConfig
        from vllm.engine.arg_utils import EngineArgs
    except Exception:  # noqa: BLE001 - no vLLM, or one that moved these: vLLM checks at build time
        return None
    llm = {name for name, p in inspect.signature(LLM.__init__).parameters.items()
           if name != "self" and p.kind is not p.VAR_KEYWORD}
    return {"engine": frozenset(llm | {f.name for f in dataclasses.fields(EngineArgs)}),
            "speculative": frozenset(f.name for f in dataclasses.fields(SpeculativeConfig)),
            "sampling": frozenset(SamplingParams.__struct_fields__)}


def unknown_keys(table: str, keys) -> list[str]:
    """One phrase per key vLLM does not take in ``table`` ("engine", "speculative", "sampling"),
    with the closest name it does take; [] without vLLM."""
    known = (fields() or {}).get(table)
    if known is None:
        return []
    return [f"{key!r}{did_you_mean(key, known)}" for key in keys if key not in known]


def sampling_problem(sampling: dict) -> str | None:
    """vLLM's own reason for refusing these SamplingParams (its validation), or None (also
    without vLLM)."""
    try:
        from vllm import SamplingParams
    except Exception:  # noqa: BLE001 - no vLLM: left to vLLM at request time
        return None
    try:
        SamplingParams(**sampling)
    except Exception as exc:  # noqa: BLE001 - vLLM's validation errors (VLLMValidationError, TypeError, ...)
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


@functools.lru_cache(maxsize=1)
def _architectures() -> frozenset[str] | None:
    try:
        from vllm.model_executor.models import ModelRegistry

        return frozenset(ModelRegistry.get_supported_archs())
    except Exception:  # noqa: BLE001 - no vLLM: left to vLLM at build time
        return None


# Methods that run only on a GPU, with the reason vLLM gives (vLLM 0.32: ngram_gpu's proposer is CUDA
# code; dspark drafts only on the V2 model runner, which needs Triton).
GPU_ONLY_METHODS = {"ngram_gpu": "its proposer runs on CUDA", "dspark": "it runs only on vLLM's V2 model runner, "
                    "which needs Triton"}
# Methods whose proposer lives in another package: the module vLLM imports and what to install.
METHOD_PACKAGES = {"suffix": ("arctic_inference", "arctic-inference")}


def on_cpu() -> bool | None:
    """Whether the installed vLLM runs on CPU (None without vLLM)."""
    try:
        from vllm.platforms import current_platform
    except Exception:  # noqa: BLE001 - no vLLM: left to vLLM at build time
        return None
    return current_platform.is_cpu()


def method_problem(method: str) -> str | None:
    """Why the installed vLLM cannot build ``method``'s draft here, or None (also without vLLM)."""
    if importlib.util.find_spec("vllm") is None:
        return None  # no vLLM here (a machine that only validates files): vLLM checks at build time
    if method in GPU_ONLY_METHODS and on_cpu():
        return (f"method {method!r} cannot run on this CPU vLLM: {GPU_ONLY_METHODS[method]}; run it on a GPU "
                f"machine or pick another method")
    if method in METHOD_PACKAGES:
        module, package = METHOD_PACKAGES[method]
        if importlib.util.find_spec(module) is None:
            return f"method {method!r} needs the {package} package, which is not installed: pip install {package}"
    needed = METHOD_ARCHITECTURE.get(method)
    archs = _architectures() if needed else None
    if archs is None or needed in archs:
        return None
    return (f"the installed vLLM cannot build method {method!r}: its model registry has no {needed} "
            f"(the model class of that method's drafts); pick another method or a vLLM that registers it")


def source_of(function) -> str:
    """The installed build's source of a vLLM function ("" where it cannot be read: a probe that
    reads it then finds nothing)."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def medusa_asserts_fixed_k() -> bool:
    """Whether the installed vLLM's Medusa drafter asserts that every step drafts the configured k
    (engines/known_defects.py, medusa-fixed-k): a per-batch-size schedule then kills the engine."""
    try:
        from vllm.v1.spec_decode.medusa import MedusaProposer
    except Exception:  # noqa: BLE001 - no vLLM, or no Medusa in it: nothing to refuse
        return False
    return "assert num_speculative_tokens == self.num_speculative_tokens" in source_of(MedusaProposer.propose)


def schedule_problem(method: str, speculative: dict) -> str | None:
    """Why the installed vLLM cannot run ``method`` with the speculative table's per-batch-size
    schedule (num_speculative_tokens_per_batch_size), or None."""
    if method == "medusa" and "num_speculative_tokens_per_batch_size" in speculative and medusa_asserts_fixed_k():
        return ("field 'speculative': num_speculative_tokens_per_batch_size with method 'medusa' would crash this "
                "vLLM's engine at the first step whose batch size schedules another k (its Medusa drafter asserts a "
                "fixed k: known defect medusa-fixed-k, docs/known-defects.md); remove the schedule for this pairing")
    return None
