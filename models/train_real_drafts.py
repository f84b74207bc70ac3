"""Train the drafts of the real target (SmolLM2-135M-Instruct, models/real_target.py): an EAGLE-3 head
and a small ``draft_model`` draft, both distilled from the target's next-token distribution.

- ``head-e3``: the fixture heads' EAGLE-3 recipe (models/train_heads.py: the same module, loss and
  checkpoint writer), reading vLLM's default auxiliary layers of a 30-layer target, (2, 15, 27).
- ``draft-l4``: the target's first 4 layers under its own final norm, with the target's (tied)
  embeddings frozen: a self-speculative draft in the manner of layer-skipping (Elhoushi et al. 2024,
  arXiv:2404.16710), here distilled so that its final norm and layers learn to guess the target's
  token. Untrained, the cut model agreed with the target on 1.5-3% of drafts (measured at k = 3).

Training text, in windows of ``--seq`` tokens (short contexts on purpose, so the context-length axis
of configs/cpu-real.toml can show how drafts trained on them decay), half from each of:
- chat: the target's own greedy replies (vLLM, ``--chat-prompts`` of them, up to 128 tokens each) in
  its chat template to requests made from the running interpreter's standard library: explain a
  pydoc topic's paragraph, write the function a docstring describes, explain a code cut. A draft
  learns what the target says after its chat template, as users' drafts are trained (EAGLE-3's
  recipe regenerates its data with the target); MT-Bench and HumanEval, the benchmark's prompts,
  are not among them;
- code: the standard library's train split as it is (the fixtures' text), for the code prompts.
Untrained on chat, the same recipe gave acceptance 0.16 (head) and 0.13 (draft) at k = 1 on MT-Bench.

Only the trained tensors are shipped (models/real-drafts/): the head whole, the draft without the
embeddings, which ``assemble_draft`` takes from the converted target when ``make models-real`` runs.

Run: ``python models/train_real_drafts.py`` after ``python models/real_target.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from real_target import OUT as TARGET  # noqa: E402
from train_fixtures import SEED, batches, lr_at, stdlib_sources, token_stream  # noqa: E402
from train_heads import (Eagle3Head, TargetFeatures, greedy_agreement, head_config, kl,  # noqa: E402
                         log_step, optimise, unrolled_loss, write_eagle3)

SHIPPED = HERE / "real-drafts"
# vLLM's default auxiliary layers for EAGLE-3 over a target of n layers: (2, n // 2, n - 3).
AUX_LAYERS = (2, 15, 27)
DRAFT_LAYERS = 4
# The draft's own tensors: everything but the embeddings it shares with the target (tied LM head).
SHARED = ("model.embed_tokens.weight", "lm_head.weight")


class Teacher(TargetFeatures):
    """The target's features computed in bfloat16 (4x faster than float32 here: 0.22 s against 0.87 s
    for 4 x 128 tokens) and handed over in float32; embedding and LM head stay float32."""

    def __init__(self, folder: Path, aux_layers):
        super().__init__(folder, aux_layers)
        self.embedding = self.model.model.embed_tokens.weight.detach().clone()

    def lower_precision(self) -> None:
        self.model.to(torch.bfloat16)

    def __call__(self, ids, labels_from: int = 0):
        return {k: v.float() for k, v in super().__call__(ids, labels_from).items()}

    def embed(self, ids):
        return F.embedding(ids, self.embedding)

    def lm_head(self, x):
        return x.float() @ self.embedding.T


def chat_requests(train: list[tuple[str, str]], prose: str, n: int) -> list[str]:
    """``n`` requests a user might send, made from standard-library text (seeded, reproducible)."""
    import random
    import re

    rng = random.Random(SEED)
    paragraphs = [p.strip() for p in prose.split("\n\n") if 200 <= len(p.strip()) <= 1200]
    functions = []
    for _, text in train:
        for m in re.finditer(r'^def (\w+)\(([^)]*)\)[^:]*:\n\s+"""(.+?)"""', text, re.M | re.S):
            if 40 <= len(m.group(3)) <= 600 and not m.group(1).startswith("_"):
                functions.append((m.group(0), m.group(1), m.group(3).strip()))
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(f"Explain this part of the Python documentation in simple words:\n\n{rng.choice(paragraphs)}")
        elif kind == 1:
            code, name, doc = rng.choice(functions)
            out.append(f"Write a Python function `{name}` that does the following:\n{doc}")
        else:
            code, name, doc = rng.choice(functions)
            out.append(f"What does this Python function do?\n\n{code}\n    ...")
    return out


def chat_stream(target: Path, requests: list[str], max_tokens: int) -> tuple[torch.Tensor, int]:
    """The target's greedy replies through vLLM, prompt and reply token ids one after another."""
    import os

    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    tokenizer = AutoTokenizer.from_pretrained(target)
    prompts = [tokenizer.apply_chat_template([{"role": "system", "content": "You are a helpful assistant."},
                                              {"role": "user", "content": r}], tokenize=False,
                                             add_generation_prompt=True) for r in requests]
    llm = LLM(str(target), dtype="float32", enforce_eager=True, max_model_len=2048, seed=SEED,
              kv_cache_memory_bytes=2 << 30, max_num_seqs=64)
    outs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_tokens), use_tqdm=False)
    ids: list[int] = []
    for o in outs:
        ids.extend(o.prompt_token_ids)
        ids.extend(o.outputs[0].token_ids)
    replies = sum(len(o.outputs[0].token_ids) for o in outs)
    del llm
    return torch.tensor(ids, dtype=torch.long), replies


def mixed_batches(streams: list[torch.Tensor], batch: int, seq: int, seed: int):
    """Windows drawn from each stream in turn (half the batch from each of two)."""
    parts = [batches(s, batch // len(streams), seq, seed + i) for i, s in enumerate(streams)]
    while True:
        yield torch.cat([next(p) for p in parts])


def cut_draft(target_model, layers: int):
    """The target's first ``layers`` decoder layers and its final norm, as a Llama of its own."""
    import copy

    draft = copy.deepcopy(target_model)
    draft.model.layers = draft.model.layers[:layers]
    draft.config.num_hidden_layers = layers
    if getattr(draft.config, "layer_types", None):
        draft.config.layer_types = draft.config.layer_types[:layers]
    for name, p in draft.named_parameters():
        p.requires_grad_(not name.startswith(SHARED))
    return draft


def assemble_draft(target: Path, shipped: Path, out: Path) -> None:
    """The runnable draft folder: the shipped layers and norm, the target's embeddings and tokenizer."""
    import shutil

    from safetensors.torch import load_file, save_file

    own = load_file(str(shipped / "model.safetensors"))
    embeddings = load_file(str(target / "model.safetensors"))["model.embed_tokens.weight"]
    own["model.embed_tokens.weight"] = embeddings.to(next(iter(own.values())).dtype)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(own, str(staging / "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(shipped / "config.json", staging / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(target / name, staging / name)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def save_draft(draft, folder: Path) -> int:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in draft.state_dict().items()
               if not k.startswith(SHARED) and "rotary" not in k}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = draft.config.to_dict()
    config["torch_dtype"] = "float16"
    config.pop("dtype", None)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return sum(v.numel() for v in tensors.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, default=TARGET)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--unroll", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--draft-lr", type=float, default=5e-4)
    parser.add_argument("--positions", type=int, default=32, help="chain starts per window that get a loss")
    parser.add_argument("--chat-prompts", type=int, default=768, help="requests the target answers for the chat half")
    parser.add_argument("--chat-tokens", type=int, default=128, help="tokens per reply")
    args = parser.parse_args()
    if not (args.target / "model.safetensors").exists():
        sys.exit(f"train_real_drafts.py: no target at {args.target}: run python models/real_target.py first")
    torch.manual_seed(SEED)
    t0 = time.time()
    train, held_out, prose = stdlib_sources()
    chat, replies = chat_stream(args.target, chat_requests(train, prose, args.chat_prompts), args.chat_tokens)
    generated = time.time() - t0
    print(f"[real drafts] chat data: {replies} reply tokens of {args.chat_prompts} requests ({generated:.0f}s)", flush=True)
    target = Teacher(args.target, AUX_LAYERS)
    cfg = target.config
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.target)
    code = token_stream(tokenizer, [t for _, t in train])
    held = token_stream(tokenizer, [t for _, t in held_out])
    torch.manual_seed(SEED)
    e3 = Eagle3Head(cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, AUX_LAYERS)
    draft = cut_draft(target.model, DRAFT_LAYERS).train()
    target.lower_precision()
    opt = torch.optim.AdamW([
        {"params": e3.parameters(), "lr": args.lr, "peak": args.lr},
        {"params": [p for p in draft.parameters() if p.requires_grad], "lr": args.draft_lr, "peak": args.draft_lr},
    ], weight_decay=0.0, betas=(0.9, 0.95))
    data = mixed_batches([chat, code], args.batch, args.seq, SEED + 21)
    gen = torch.Generator().manual_seed(SEED + 22)
    ema: dict[str, float] = {}
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, group["peak"])
        ids = next(data)[:, :-1]
        first = int(torch.randint(0, args.seq - args.unroll - args.positions + 1, (1,), generator=gen))
        end = first + args.positions
        feats = target(ids[:, : end + args.unroll], labels_from=first + 1)
        feats = {k: (v if k == "logp" else v[:, :end]) for k, v in feats.items()}
        feats["labels_from"] = first + 1
        # The draft predicts the token after each position, as the target does: KL at the chain starts.
        draft_hidden = draft.model(input_ids=ids[:, : end + 1]).last_hidden_state[:, first + 1: end + 1]
        draft_logits = draft.lm_head(draft_hidden)
        losses = {"e3": unrolled_loss(e3, target, ids, feats, "aux", args.unroll, first),
                  "draft": kl(draft_logits, feats["logp"][:, : end - first])}
        optimise(opt, losses, [p for g in opt.param_groups for p in g["params"]], ema)
        if step % 25 == 0 or step == args.steps - 1:
            log_step("real drafts", step, args.steps, ema, t0)
    e3.eval()
    draft.eval()
    windows = next(batches(held, 8, args.seq, SEED + 7))[:, :-1]
    feats = target(windows)
    with torch.no_grad():
        draft_agree = round((draft(input_ids=windows).logits.argmax(-1) == feats["logp"].argmax(-1))
                            .float().mean().item(), 4)
    card = {
        "target": str(args.target.relative_to(HERE.parent)) if args.target.is_relative_to(HERE.parent) else str(args.target),
        "steps": args.steps, "batch": args.batch, "seq_len": args.seq, "unroll": args.unroll,
        "lr": args.lr, "draft_lr": args.draft_lr, "aux_layers": list(AUX_LAYERS), "draft_layers": DRAFT_LAYERS,
        "data": {"chat": f"the target's greedy replies ({replies} tokens, up to {args.chat_tokens} each) to "
                          f"{args.chat_prompts} requests made from the standard library (chat_requests)",
                  "code": "CPython standard library, train split of models/train_fixtures.stdlib_sources"},
        "generate_seconds": round(generated), "train_seconds": round(time.time() - t0 - generated),
        "models": {
            "head-e3": {"params": write_eagle3(args.out / "head-e3", head_config(cfg), cfg, e3),
                        "final_train_kl": round(ema["e3"], 4),
                        "held_out_argmax_agreement_per_step": greedy_agreement(e3, target, windows, feats, "aux", 5)},
            "draft-l4": {"params_shipped": save_draft(draft, args.out / "draft-l4"),
                         "final_train_kl": round(ema["draft"], 4),
                         "held_out_argmax_agreement": draft_agree},
        },
    }
    (args.out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
