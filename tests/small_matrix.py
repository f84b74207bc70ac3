"""The small pairings-file header that plugin-level tests share: fixture target, a few short
prompts, a small KV cache."""

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
