"""Minimal reproduction of a vLLM 0.32 defect found by specgate (docs/known-defects.md,
medusa-fixed-k): Medusa with a per-batch-size speculation schedule kills the engine.

Run: python scripts/repro_medusa_fixed_k.py   (any vLLM build; needs only the fixture models)

vLLM's scheduler picks k per step from num_speculative_tokens_per_batch_size and hands it to the
drafter (gpu_model_runner.propose_draft_token_ids). draft_model, ngram, EAGLE, EAGLE-3 and MTP draft
that many; MedusaProposer.propose (vllm/v1/spec_decode/medusa.py) instead asserts it equals the
configured num_speculative_tokens. vLLM accepts the config, builds the engine, and the first step
whose batch size schedules another k dies with a bare AssertionError.
"""

import os
import traceback

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from vllm import LLM, SamplingParams  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "models", "fixture")
SPEC = {"method": "medusa", "model": f"{MODELS}/head-medusa", "num_speculative_tokens": 3,
        # one request: 3 drafts; two or more: 1
        "num_speculative_tokens_per_batch_size": [[1, 1, 3], [2, 64, 1]]}

llm = LLM(model=f"{MODELS}/target", dtype="float32", enforce_eager=True, max_model_len=1024,
          kv_cache_memory_bytes=128 << 20, speculative_config=SPEC)
params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
print("one request (k 3):", llm.generate(["def f(x):\n    return"], params, use_tqdm=False)[0].outputs[0].token_ids)
try:
    out = llm.generate(["def f(x):\n    return", "import os\n"], params, use_tqdm=False)
    print("two requests (k 1):", [o.outputs[0].token_ids for o in out], "- no defect on this build")
except Exception as exc:  # noqa: BLE001 - the defect: the engine dies
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    print(f"two requests (k 1): the engine died: {type(exc).__name__} at {frame.filename.split('vllm/')[-1]}:"
          f"{frame.lineno} `{frame.line}`")
