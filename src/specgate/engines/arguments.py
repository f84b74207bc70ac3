"""A condition -> vLLM's arguments: the engine's (vllm.LLM / `vllm serve`), the key of conditions that
can share one engine, and each request's SamplingParams. The pairing's tables win over specgate's defaults."""

from __future__ import annotations

from typing import Any

from specgate.matrix import features
from specgate.matrix.conditions import CROSS_REQUEST_METHODS, Condition


def llm_kwargs(condition: Condition) -> dict[str, Any]:
    """Keyword arguments for vllm.LLM: the pairing's engine table wins over specgate's defaults."""
    p = condition.pairing
    kwargs: dict[str, Any] = {
        "model": p.target,
        "dtype": p.dtype,
        "seed": p.seed,
        # Counters are read from the stat loggers, which exist only with stats on.
        "disable_log_stats": False,
        "trust_remote_code": False,
    }
    if not condition.is_control:
        spec = {"method": condition.method, "num_speculative_tokens": condition.k, **p.speculative,
                **condition.feature_setting.speculative}
        if p.draft is not None:
            spec["model"] = p.draft
        kwargs["speculative_config"] = spec
        kwargs["per_request_spec_decode_metrics"] = "summary"
    kwargs.update(p.engine)
    kwargs.update(condition.feature_setting.engine)
    kwargs.update(p.features.get(condition.feature, {}))
    return kwargs


def engine_key(condition: Condition) -> str:
    """Conditions with equal keys can share one engine (they differ only in sampling or mode;
    serving needs a server, which other modes cannot share). A cross-request proposer's engine is its
    condition's own: on a shared one its acceptance would depend on which conditions ran there before,
    and so change with a -k selection or a shard."""
    own = condition.id if condition.method in CROSS_REQUEST_METHODS else ""
    return ("serving:" if condition.mode == "serving" else "") + own + repr(sorted(llm_kwargs(condition).items()))


def sampling_kwargs(condition: Condition, index: int = 0, count: int = 1) -> dict[str, Any]:
    """The sampling of the index-th of ``count`` requests: the pairing's, then its feature's."""
    p = condition.pairing
    kw = {"temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k,
          "max_tokens": p.max_new_tokens, "ignore_eos": p.ignore_eos, **p.sampling}
    kw.update(condition.feature_setting.request_sampling(index, count))
    return kw


def sampling_params(condition: Condition, index: int, count: int = 1, encode=None, **override):
    """vLLM's SamplingParams for the index-th of ``count`` requests of a condition; ``encode``
    (text -> token ids) resolves the tokens a feature names by text (features.TOKEN_TEXTS)."""
    from vllm import SamplingParams

    kw = {**sampling_kwargs(condition, index, count), **override}
    if any(key in kw for key in features.TOKEN_TEXTS):
        if encode is None:
            raise ValueError(f"{condition.id}: tokens named by text need the engine's tokenizer")
        kw = features.resolve(kw, encode)
    if isinstance(kw.get("structured_outputs"), dict):
        from vllm.sampling_params import StructuredOutputsParams

        kw["structured_outputs"] = StructuredOutputsParams(**kw["structured_outputs"])
    # A per-request seed keeps each request's sample independent of batch order.
    return SamplingParams(seed=condition.pairing.seed + index, **kw)
