"""Minimal reproduction of vLLM #56101 on vLLM 0.32 (docs/known-defects.md, accepted-past-end):
drafts accepted past a request's end still count as accepted.

Run: python scripts/repro_accepted_past_end.py   (any vLLM build; needs only the fixture models)

Each verification step emits its accepted drafts plus one token, so a request's accepted drafts A
can be at most its emitted tokens N minus its verification steps D. The scheduler
(vllm/v1/core/sched/scheduler.py, update_from_output) counts A for a step before
_update_request_with_output trims the tokens past the end (EOS, a stop id, max_tokens), so a
step that ends a request counts drafts that were never emitted: A > N - D.
"""

import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from vllm import LLM, SamplingParams  # noqa: E402

MODELS = os.path.join(os.path.dirname(__file__), "..", "models", "fixture")
PROMPT = "class Stack:\n    def __init__(self):\n        self._items = []\n\n    def push(self, item):\n"
K = 8

llm = LLM(model=f"{MODELS}/target", dtype="float32", enforce_eager=True, max_model_len=256,
          kv_cache_memory_bytes=64 << 20, seed=0, per_request_spec_decode_metrics="summary",
          speculative_config={"method": "draft_model", "model": f"{MODELS}/aligned-draft",
                              "num_speculative_tokens": K})
for max_tokens in (9, 10, 11, 12):
    out = llm.generate([PROMPT], SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True),
                       use_tqdm=False)[0].outputs[0]
    m = out.spec_decode_metrics
    steps = sum(m.histogram)
    accepted = sum(j * n for j, n in enumerate(m.histogram))
    print(f"max_tokens={max_tokens}: emitted N={len(out.token_ids)}, verification steps D={steps}, "
          f"accepted A={accepted} (at most N - D = {len(out.token_ids) - steps})"
          f"{'  <- counted past the end' if accepted > len(out.token_ids) - steps else ''}")
