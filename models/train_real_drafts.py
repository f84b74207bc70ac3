"""Train the drafts of the real target (SmolLM2-135M-Instruct, models/real_target.py): an EAGLE-3 head
and a small ``draft_model`` draft, both distilled from the target's next-token distribution.

- ``head-e3``: the fixture heads' EAGLE-3 recipe (models/train_heads.py: the same module, loss and
  checkpoint writer), reading vLLM's default auxiliary layers of a 30-layer target, (2, 15, 27).
- ``draft-l4``: the target's first 4 layers under its own final norm, with the target's (tied)
  embeddings: a self-speculative draft in the manner of layer-skipping (Elhoushi et al. 2024,
  arXiv:2404.16710), distilled so that it guesses the target's token. The target's weights stay
  frozen; what is trained is every norm of the cut and a rank-32 update of each projection (LoRA,
  Hu et al. 2021), 1.3M parameters (2.6 MB shipped, against 28 MB for the 4 layers whole).
  Untrained, the cut model agreed with the target on 1.5-3% of drafts (measured at k = 3).

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

Only the trained tensors are shipped (models/real-drafts/): the head whole; of the draft its norms
and low-rank factors, which ``assemble_draft`` merges into the converted target's layers when
``make models-real`` runs.

Run: ``python models/train_real_drafts.py`` after ``python models/real_target.py`` (both models;
``--models draft-l4`` retrains one and keeps the other's files and card entry).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from real_target import OUT as TARGET  # noqa: E402
from train_fixtures import SEED, batches, lr_at, stdlib_sources, token_stream  # noqa: E402
from train_heads import (Eagle3Head, TargetFeatures, greedy_agreement, head_config, kl,  # noqa: E402
                         log_step, optimise, save_safetensors, unrolled_loss, write_eagle3)

SHIPPED = HERE / "real-drafts"
# vLLM's default auxiliary layers for EAGLE-3 over a target of n layers: (2, n // 2, n - 3).
AUX_LAYERS = (2, 15, 27)
DRAFT_LAYERS = 4
# Rank of the draft's low-rank updates: 1.3M shipped parameters (2.6 MB in float16) against 14.2M
# for the 4 layers whole (28 MB).
DRAFT_RANK = 32
MODELS = ("head-e3", "draft-l4")


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


class LowRank(nn.Module):
    """A frozen linear layer plus a trained low-rank update (LoRA, Hu et al. 2021, arXiv:2106.09685):
    y = x W^T + (x A^T) B^T, A [rank, in], B [out, rank]. B starts at zero, so training starts from
    the cut target exactly; only A and B (about 4% of the layer) are shipped."""

    def __init__(self, base: nn.Linear, rank: int):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features ** 0.5)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + (x @ self.lora_a.T) @ self.lora_b.T


# The projections of a Llama decoder layer that get a low-rank update.
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def cut_draft(target_model, layers: int, rank: int = DRAFT_RANK):
    """The target's first ``layers`` decoder layers and its final norm, as a Llama of its own: the
    target's weights frozen, its norms and a rank-``rank`` update of every projection trained."""
    import copy

    draft = copy.deepcopy(target_model)
    draft.model.layers = draft.model.layers[:layers]
    draft.config.num_hidden_layers = layers
    if getattr(draft.config, "layer_types", None):
        draft.config.layer_types = draft.config.layer_types[:layers]
    for p in draft.parameters():
        p.requires_grad_(False)
    for layer in draft.model.layers:
        for path in PROJECTIONS:
            parent, name = path.split(".")
            block = getattr(layer, parent)
            setattr(block, name, LowRank(getattr(block, name), rank))
    for name, p in draft.named_parameters():
        p.requires_grad_(name.endswith(("norm.weight", "lora_a", "lora_b")))
    return draft


def shipped_tensors(draft) -> dict[str, torch.Tensor]:
    """What ships of a cut draft: its norms and low-rank factors, under the names of the Llama
    weights they belong to (``...q_proj.lora_a`` updates ``...q_proj.weight``)."""
    return {name.replace(".base.", "."): p for name, p in draft.named_parameters() if p.requires_grad}


def _product(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """B A in float64, summed over the rank in a fixed order by elementwise operations: a matrix
    product's summation order varies with the BLAS and the CPU, and one flipped bit in the merged
    weights would change the draft's fingerprint, so that its records no longer apply."""
    b, a = b.double(), a.double()
    total = torch.zeros(b.shape[0], a.shape[1], dtype=torch.float64)
    for r in range(a.shape[0]):
        total += b[:, r, None] * a[None, r]
    return total


def assemble_draft(target: Path, shipped: Path, out: Path) -> None:
    """The runnable draft folder (float32): the target's first layers with the shipped low-rank updates
    merged (W + B A in float64, in a fixed order, so that every machine writes the same bits), the shipped norms,
    the target's embeddings and tokenizer. Raises FileNotFoundError when a folder lacks its files."""
    from safetensors.torch import load_file, save_file

    own = load_file(str(shipped / "model.safetensors"))
    config = json.loads((shipped / "config.json").read_text())
    base = load_file(str(target / "model.safetensors"))
    layers = config["num_hidden_layers"]
    weights = {"model.embed_tokens.weight": base["model.embed_tokens.weight"]}
    for name, w in base.items():
        if name.startswith("model.layers.") and int(name.split(".")[2]) < layers:
            weights[name] = w
    for name, t in own.items():
        if name.endswith("lora_a"):
            stem = name[: -len("lora_a")]
            weights[stem + "weight"] = (weights[stem + "weight"].double() + _product(own[stem + "lora_b"], t)).float()
        elif not name.endswith("lora_b"):
            weights[name] = t.float()
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(staging / "model.safetensors"),
              metadata={"format": "pt"})
    (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(target / name, staging / name)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # the folder appears whole or not at all


def save_draft(draft, folder: Path) -> int:
    """Write the shipped part of a cut draft (float16, train_heads.save_safetensors); returns its
    parameter count."""
    config = draft.config.to_dict()
    config["torch_dtype"] = "float32"  # the dtype of the folder assemble_draft makes
    for key in ("dtype", "_name_or_path"):  # the latter is the trainer's local path
        config.pop(key, None)
    return save_safetensors(shipped_tensors(draft), folder, config)


def chat_data(args, train, prose) -> tuple[torch.Tensor, int]:
    """The chat half of the training text, generated by the target (or read from ``--chat-cache``,
    where an earlier run with the same arguments left it)."""
    key = f"{args.target.resolve()}|{args.chat_prompts}|{args.chat_tokens}"
    if args.chat_cache and args.chat_cache.exists():
        cached = torch.load(args.chat_cache)
        if cached["key"] == key:
            return cached["ids"], cached["replies"]
    chat, replies = chat_stream(args.target, chat_requests(train, prose, args.chat_prompts), args.chat_tokens)
    if args.chat_cache:
        torch.save({"key": key, "ids": chat, "replies": replies}, args.chat_cache)
    return chat, replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=Path, default=TARGET)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="which to train (default both); the others' files and card entries are kept")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--unroll", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--draft-lr", type=float, default=2e-3)
    parser.add_argument("--positions", type=int, default=32, help="chain starts per window that get a loss")
    parser.add_argument("--chat-prompts", type=int, default=768, help="requests the target answers for the chat half")
    parser.add_argument("--chat-tokens", type=int, default=128, help="tokens per reply")
    parser.add_argument("--chat-cache", type=Path, help="keep the generated chat text in this file for the next run")
    args = parser.parse_args()
    if not (args.target / "model.safetensors").exists():
        sys.exit(f"train_real_drafts.py: no target at {args.target}: run python models/real_target.py first")
    torch.manual_seed(SEED)
    t0 = time.time()
    train, held_out, prose = stdlib_sources()
    chat, replies = chat_data(args, train, prose)
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
    groups = {"head-e3": {"params": list(e3.parameters()), "lr": args.lr, "peak": args.lr},
              "draft-l4": {"params": [p for p in draft.parameters() if p.requires_grad],
                           "lr": args.draft_lr, "peak": args.draft_lr}}
    opt = torch.optim.AdamW([groups[m] for m in args.models], weight_decay=0.0, betas=(0.9, 0.95))
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
        losses = {}
        if "head-e3" in args.models:
            losses["e3"] = unrolled_loss(e3, target, ids, feats, "aux", args.unroll, first)
        if "draft-l4" in args.models:
            # The draft predicts the token after each position, as the target does: KL at the chain starts.
            draft_hidden = draft.model(input_ids=ids[:, : end + 1]).last_hidden_state[:, first + 1: end + 1]
            losses["draft"] = kl(draft.lm_head(draft_hidden), feats["logp"][:, : end - first])
        optimise(opt, losses, [p for g in opt.param_groups for p in g["params"]], ema)
        if step % 25 == 0 or step == args.steps - 1:
            log_step("real drafts", step, args.steps, ema, t0)
    e3.eval()
    draft.eval()
    windows = next(batches(held, 8, args.seq, SEED + 7))[:, :-1]
    feats = target(windows)
    card_path = args.out / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {"models": {}}
    card.update({
        "target": str(args.target.relative_to(HERE.parent)) if args.target.is_relative_to(HERE.parent) else str(args.target),
        "data": {"chat": f"the target's greedy replies ({replies} tokens, up to {args.chat_tokens} each) to "
                          f"{args.chat_prompts} requests made from the standard library (chat_requests)",
                  "code": "CPython standard library, train split of models/train_fixtures.stdlib_sources"},
        "generate_seconds": round(generated)})
    run = {"steps": args.steps, "batch": args.batch, "seq_len": args.seq, "trained_with": args.models,
           "train_seconds": round(time.time() - t0 - generated)}
    if "head-e3" in args.models:
        card["models"]["head-e3"] = {
            **run, "lr": args.lr, "unroll": args.unroll, "aux_layers": list(AUX_LAYERS),
            "params": write_eagle3(args.out / "head-e3", head_config(cfg), cfg, e3),
            "final_train_kl": round(ema["e3"], 4),
            "held_out_argmax_agreement_per_step": greedy_agreement(e3, target, windows, feats, "aux", 5)}
    if "draft-l4" in args.models:
        with torch.no_grad():
            agree = (draft(input_ids=windows).logits.argmax(-1) == feats["logp"].argmax(-1)).float().mean().item()
        card["models"]["draft-l4"] = {
            **run, "lr": args.draft_lr, "layers": DRAFT_LAYERS, "rank": DRAFT_RANK,
            "params_shipped": save_draft(draft, args.out / "draft-l4"),
            "final_train_kl": round(ema["draft"], 4), "held_out_argmax_agreement": round(agree, 4)}
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
