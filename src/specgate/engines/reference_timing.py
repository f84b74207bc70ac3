"""A vLLM-free clock for the machine's speed: the target model run greedily through transformers
for the same prompt and token count, timed right beside each request of a control.

The speculative conditions are judged relative to the control (verdict.paired_ratio_check), which
cancels machine drift but also cancels a slowdown that hits the control as much, e.g. an overhead
added to every engine step. The control is therefore judged relative to this reference, which
runs the same model on the same machine at the same moment without any vLLM code. Used for
targets small enough to hold a second copy (`machine_reference = true` in a pairing).
"""

from __future__ import annotations

import time


class MachineReference:
    def __init__(self, model_path: str, dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch = torch
        torch_dtype = getattr(torch, dtype) if dtype not in ("auto", None) else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype).eval()
        self.path = model_path

    def seconds(self, prompt_ids: list[int], new_tokens: int) -> float:
        """Wall time of a greedy, KV-cached generation of ``new_tokens`` after ``prompt_ids``."""
        torch = self.torch
        with torch.inference_mode():
            ids = torch.tensor([prompt_ids])
            started = time.perf_counter()
            out = self.model(input_ids=ids, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            for _ in range(new_tokens - 1):
                out = self.model(input_ids=token, past_key_values=past, use_cache=True)
                past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            return time.perf_counter() - started
