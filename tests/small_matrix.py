"""The small pairings-file header that plugin-level tests share: fixture target, a few short
prompts, a small KV cache; and every timing check off, for runs whose subject is not timing."""

from paths import FIXTURE_MODELS


def defaults(num_prompts: int, extra: str = "") -> str:
    return f"""
[defaults]
target = "{FIXTURE_MODELS}/target"
target_name = "fixture"
num_prompts = {num_prompts}
max_new_tokens = 8
dtype = "float32"
engine = {{ enforce_eager = true, max_model_len = 512, kv_cache_memory_bytes = 67108864 }}
{extra}
"""


# 3 requests of ~30 ms on a shared, loaded 2-core machine once moved +1203%: a run whose subject is
# not timing judges none (docs/baselines.md measures timing).
NO_TIMING = "tolerances = { latency = inf, control_latency = inf, blocked = inf }"
