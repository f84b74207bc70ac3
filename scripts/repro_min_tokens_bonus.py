"""Minimal reproduction of a vLLM 0.32 defect found by specgate (docs/known-defects.md,
min-tokens-bonus-position): under speculation, min_tokens masks the bonus token as of the step's
start.

Run: python scripts/repro_min_tokens_bonus.py   (any vLLM build; needs only the fixture models)

A verification step scores the k drafts and then samples one more token (the bonus) after the
last of them. The rejection sampler masks stop ids at the draft positions per position
(MinTokensLogitsProcessor.apply_with_spec_decode), but the bonus token goes through the plain
sampler (vllm/v1/sample/sampler.py, apply_logits_processors), where MinTokensLogitsProcessor.apply
masks by the output length before the step. When the drafts carry the request to min_tokens or
beyond, a stop id that min_tokens already allows at the bonus position is refused: without
speculation the request stops there; with it, it runs on.
"""

import json
import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from vllm import LLM, SamplingParams  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models", "fixture")
with open(os.path.join(HERE, "..", "src", "specgate", "data", "code_prompts.jsonl"), encoding="utf-8") as f:
    PROMPTS = [json.loads(line)["prompt"] for line in f.read().splitlines()[:16]]
ENGINE = dict(dtype="float32", enforce_eager=True, max_model_len=1024, kv_cache_memory_bytes=128 << 20, seed=0)
PARAMS = SamplingParams(temperature=0, max_tokens=64, min_tokens=13, stop_token_ids=[204])  # 204: "\n"


def outputs(llm):
    return [o.outputs[0].token_ids for o in llm.generate(PROMPTS, PARAMS, use_tqdm=False)]


plain = outputs(LLM(model=f"{MODELS}/target", **ENGINE))
spec = outputs(LLM(model=f"{MODELS}/target", speculative_config={
    "method": "draft_model", "model": f"{MODELS}/aligned-draft", "num_speculative_tokens": 3}, **ENGINE))
for i, (a, b) in enumerate(zip(plain, spec)):
    if a != b:
        j = len(a) - 1
        print(f"prompt {i}: without speculation the stop id 204 at token {j} ends it (min_tokens allows it from "
              f"token 13); with speculation token {j} is {b[j]} and it runs on to {len(b)} tokens")
print(f"{sum(a != b for a, b in zip(plain, spec))} of {len(PROMPTS)} prompts differ (0 on a build without the defect)")
