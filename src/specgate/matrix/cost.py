"""The GPU time of a condition by a stated model, for `specgate plan` when no timing record of it
exists (records/plan.py prefers a record): the GPUs a pairing needs, its target's size, and the
seconds a condition would take. Reads a local target's config.json; nothing else, no engine.

GPUs: ``tensor_parallel_size * pipeline_parallel_size`` of the pairing's ``engine`` table (1 when
unset); a draft's ``draft_tensor_parallel_size`` runs on the same GPUs and adds none.

Decode is memory-bound: every step reads every weight of the target once, so

    step_s = BYTES_PER_PARAMETER * parameters / (GPUs * BANDWIDTH * EFFICIENCY)

- sequential (one request at a time): rounds * prompts * max_new_tokens * step_s
- batch and arrivals (all requests at once): rounds * max_new_tokens * step_s
- serving at concurrency c: rounds * ceil(prompts / c) * max_new_tokens * step_s
- a speculative condition costs what its control does (an assumed speedup of 1: drafting costs
  what the accepted tokens save); with ``paired_control`` its sequential runs also time the control
  beside every request, so they count twice;
- plus ENGINE_BUILD_S for every engine built (loading weights, CUDA graphs).

Prefill, KV-cache reads and the draft's own weights are left out: the model is a floor for decode,
meant to size shards against each other, not to promise a finishing time.

Constants: BANDWIDTH 3.35e12 B/s (one H100 SXM, HBM3) at EFFICIENCY 0.6; bytes per parameter by
dtype (float32 4; bfloat16, float16 and auto 2) or by the engine's ``quantization`` (fp8 1;
bitsandbytes, awq, gptq 0.5); ENGINE_BUILD_S 90 s. Parameters: from a local target's config.json
(the dense-transformer count: embeddings, attention with grouped KV heads, a gated MLP per layer),
else from a size in the hub id's or target_name's name ("Llama-3.1-70B-Instruct" -> 70e9), else
unknown.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from specgate.matrix.conditions import CROSS_REQUEST_METHODS, Condition, Pairing
from specgate.matrix.errors import ConfigError

BANDWIDTH = 3.35e12  # bytes/s of one GPU's memory: H100 SXM (HBM3)
EFFICIENCY = 0.6  # the share of that bandwidth a decode step reaches
ENGINE_BUILD_S = 90.0  # seconds per engine built
DTYPE_BYTES = {"float32": 4.0, "float": 4.0, "float16": 2.0, "half": 2.0, "bfloat16": 2.0, "auto": 2.0}
QUANTIZATION_BYTES = {"fp8": 1.0, "bitsandbytes": 0.5, "awq": 0.5, "gptq": 0.5}
# "70B", "0.6B", "135M": a size at the end of a name part (not "8x7B", not "v1.5b2").
SIZE_IN_NAME = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([BM])(?![A-Za-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Size:
    """What the model knows of a target: its parameters (None: unknown) and where they came from."""

    parameters: float | None
    source: str  # "config.json", "name 'X'", or why it is unknown

    def __str__(self) -> str:
        if self.parameters is None:
            return f"size unknown ({self.source})"
        scale, unit = (1e9, "B") if self.parameters >= 1e9 else (1e6, "M")
        return f"{self.parameters / scale:.3g}{unit} parameters ({self.source})"


def gpus(p: Pairing) -> int:
    """The GPUs one engine of this pairing needs."""
    found = 1
    for key in ("tensor_parallel_size", "pipeline_parallel_size"):
        value = p.engine.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"pairing {p.name!r}: field 'engine.{key}': must be an integer >= 1, got {value!r}")
        found *= value
    return found


def target_size(p: Pairing) -> Size:
    """The target's parameters: a local folder's config.json, else a size in its name."""
    if p.target.startswith("/"):
        path = Path(p.target) / "config.json"
        try:
            count = parameters(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            count = None
        if count is not None:
            return Size(float(count), "config.json")
    for name in (p.target.rstrip("/").split("/")[-1], p.target_name):
        sizes = SIZE_IN_NAME.findall(name)
        if sizes:
            number, unit = sizes[-1]
            return Size(float(number) * (1e9 if unit.upper() == "B" else 1e6), f"name {name!r}")
    return Size(None, f"no config.json with the sizes of {p.target!r} here, and no size such as '8B' in its name")


def parameters(cfg: dict) -> int | None:
    """A dense transformer's parameter count from its config.json; None when a size is missing."""
    cfg = cfg.get("text_config", cfg)
    try:
        hidden, layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
        inter, vocab, heads = int(cfg["intermediate_size"]), int(cfg["vocab_size"]), int(cfg["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        return None
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim  # q, o; k, v
    mlp = 3 * hidden * inter  # gate, up, down
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings") else 2)
    return layers * (attention + mlp) + embeddings


def bytes_per_parameter(p: Pairing) -> float:
    quantization = p.engine.get("quantization")
    if quantization in QUANTIZATION_BYTES:
        return QUANTIZATION_BYTES[quantization]
    return DTYPE_BYTES.get(p.dtype, 2.0)


def seconds(c: Condition, size: Size, bandwidth: float = BANDWIDTH) -> float | None:
    """The model's seconds for one condition, its engine build not included; None for an unknown size."""
    if size.parameters is None:
        return None
    p = c.pairing
    feature = c.feature_setting
    prompts = min(p.num_prompts, feature.max_prompts) if feature.max_prompts else p.num_prompts
    tokens = int(feature.sampling.get("max_tokens", p.max_new_tokens))
    step = bytes_per_parameter(p) * size.parameters / (gpus(p) * bandwidth * EFFICIENCY)
    if c.mode == "sequential":
        steps = prompts * tokens * (2 if p.paired_control and not c.is_control else 1)
    elif c.mode == "serving":
        steps = math.ceil(prompts / c.concurrency) * tokens
    else:  # batch, arrivals: one step serves every request
        steps = tokens
    return p.rounds * steps * step


def engine(c: Condition) -> tuple:
    """What tells one engine from another (conditions with the same one share it; the serving
    conditions of a k share one server); the engines wing's engine_key, without vLLM's arguments."""
    p = c.pairing
    return (c.mode == "serving", c.id if c.method in CROSS_REQUEST_METHODS else "", p.target, p.draft, c.method,
            c.k, p.dtype, p.seed, repr(sorted(p.engine.items())), repr(sorted(p.speculative.items())), c.feature,
            repr(sorted(p.features.get(c.feature, {}).items())))
