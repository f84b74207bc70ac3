"""Train specgate's fixture model trio: a small Llama target and two drafts that share its tokenizer.

Everything comes from text every CPython install has, so any machine can rebuild the models:
- code: the standard library's .py sources (held-out files give the benchmark prompts);
- prose: the English documentation strings in ``pydoc_data/topics.py``.

The *aligned* draft starts from the target's embeddings and first layer and is distilled from the
target's output distribution on code (like an instruct draft of an instruct target); the
*misaligned* draft has the same shape but learns prose from scratch (like a base draft).

Run: ``python models/train_fixtures.py`` (about 15 minutes on 2 cores). Fixed seeds; the numbers
in ``models/MODEL_CARD.md`` come from the run that produced the shipped weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sysconfig
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
PROMPTS_OUT = HERE.parent / "src" / "specgate" / "data" / "code_prompts.jsonl"
SEED = 1234
VOCAB = 4096
SPECIAL = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
# A minimal chat template so "instruct mode" has something real to apply to the fixture models.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# head_dim 64: the CPU attention backend rejects 16 (vllm-cpu-notes.md).
TARGET_SHAPE = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4)
DRAFT_SHAPE = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=1, num_attention_heads=4)


def stdlib_sources() -> tuple[list[tuple[str, str]], list[tuple[str, str]], str]:
    """(train code files, held-out code files, prose) as read from the running interpreter."""
    root = Path(sysconfig.get_paths()["stdlib"])
    train, held_out = [], []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("site-packages/", "test/", "pydoc_data/")) or "/tests/" in rel:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # A stable hash, not Python's salted hash(), so the split is the same on every machine.
        bucket = int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 10
        (held_out if bucket == 0 else train).append((rel, text))
    from pydoc_data.topics import topics

    prose = "\n\n".join(topics[key] for key in sorted(topics))
    return train, held_out, prose


def train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>", bos_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[2:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def token_stream(tokenizer, texts: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def batches(stream: torch.Tensor, batch: int, seq: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(stream) - seq - 1, (batch,), generator=gen)
        yield torch.stack([stream[s : s + seq + 1] for s in starts.tolist()])


def llama(shape: dict, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, rope_theta=10000.0, **shape,
    )
    torch.manual_seed(SEED)
    return LlamaForCausalLM(cfg)


def lr_at(step: int, steps: int, peak: float) -> float:
    warm = max(1, steps // 20)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def fit(model, data, steps: int, peak_lr: float, loss_fn, label: str) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01, betas=(0.9, 0.95))
    model.train()
    ema, t0 = None, time.time()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        loss = loss_fn(model, next(data))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            print(f"[{label}] step {step + 1}/{steps} loss {ema:.3f} ({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    return ema


def lm_loss(model, window):
    logits = model(window[:, :-1]).logits
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), window[:, 1:].reshape(-1))


def distil_loss(teacher):
    def loss(model, window):
        with torch.no_grad():
            target = F.log_softmax(teacher(window[:, :-1]).logits, -1)
        logp = F.log_softmax(model(window[:, :-1]).logits, -1)
        return F.kl_div(logp.flatten(0, 1), target.flatten(0, 1), log_target=True, reduction="batchmean")

    return loss


@torch.no_grad()
def argmax_agreement(draft, target, windows: torch.Tensor) -> float:
    """Teacher-forced top-1 agreement: a proxy for greedy acceptance."""
    a = draft(windows).logits.argmax(-1)
    b = target(windows).logits.argmax(-1)
    return (a == b).float().mean().item()


def seed_draft_from_target(draft, target) -> None:
    """Copy embeddings, final norm and the first layer: the draft starts where the target starts."""
    draft.model.embed_tokens.load_state_dict(target.model.embed_tokens.state_dict())
    draft.model.norm.load_state_dict(target.model.norm.state_dict())
    draft.model.layers[0].load_state_dict(target.model.layers[0].state_dict())


def save(model, tokenizer, out: Path) -> int:
    model.to(torch.float16).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    model.to(torch.float32)
    return sum(p.numel() for p in model.parameters())


def cut_prompts(held_out: list[tuple[str, str]], n: int) -> list[dict]:
    """Prompts of 8 to 20 whole lines from held-out files, starting at a top-level statement."""
    gen = torch.Generator().manual_seed(SEED)
    prompts = []
    for rel, text in held_out:
        lines = text.splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if line[:1].isalpha() and i + 30 < len(lines)]
        if not starts:
            continue
        for _ in range(2):
            start = starts[int(torch.randint(len(starts), (1,), generator=gen))]
            size = 8 + int(torch.randint(13, (1,), generator=gen))
            body = "".join(lines[start : start + size])
            if 200 <= len(body) <= 1200:
                # Two cuts may start on the same line; the length keeps ids unique.
                prompts.append({"id": f"{rel}:{start + 1}+{size}", "source": rel, "prompt": body})
    order = torch.randperm(len(prompts), generator=gen).tolist()
    return [prompts[i] for i in order[:n]]


def write_model_card(card: dict, path: Path) -> None:
    """models/MODEL_CARD.md from the numbers the training run recorded in card.json."""
    rows = []
    for name, m in card["models"].items():
        shape = m["shape"]
        agree = m.get("held_out_argmax_agreement_with_target", "-")
        rows.append(f"| {name} | {m['corpus']} | {shape['num_hidden_layers']} x {shape['hidden_size']} "
                    f"({shape['num_attention_heads']} heads of {shape['hidden_size'] // shape['num_attention_heads']}) "
                    f"| {m['params']:,} | {m['steps']} | {m['final_train_loss']} | {m.get('held_out_loss', '-')} | {agree} |")
    path.write_text(f"""# Fixture models

Three Llama-architecture models that share one byte-level BPE tokenizer (vocabulary {card['vocab_size']},
with chat-template tokens), trained by `models/train_fixtures.py` (seed {card['seed']}, Python
{card['python']} standard library, torch {card['torch']}) in {card['train_seconds']} s on 2 CPU cores.
Weights are stored in float16 (safetensors); load them with `dtype="float32"` on CPU.

| model | corpus | layers x width | parameters | steps | final train loss | held-out loss | held-out top-1 agreement with target |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

- Corpus: the standard library's `.py` files (not `test/`, `tests/`, `site-packages/`), split by a
  SHA-1 of the relative path: 1 file in 10 is held out ({card['corpus_tokens']['code_held_out']:,} tokens)
  and never trained on; {card['corpus_tokens']['code_train']:,} training tokens. Prose: the topics of
  `pydoc_data/topics.py` ({card['corpus_tokens']['prose']:,} tokens).
- Training: AdamW (betas 0.9/0.95, weight decay 0.01), warm-up then cosine decay, gradient clip 1.0,
  random windows of {card['seq_len']} tokens, batch {card['batch']}.
- *target*: next-token loss on code. *aligned-draft*: embeddings, final norm and layer 0 copied
  from the target, then distilled (KL to the target's next-token distribution) on code.
  *misaligned-draft*: same shape, next-token loss on prose from scratch.
- Benchmark prompts: {card['held_out_prompts']} snippets of 8 to 20 lines from held-out files, written to
  `src/specgate/data/code_prompts.jsonl`.
- Top-1 agreement is teacher-forced on held-out code windows: a proxy for greedy acceptance.
{heads_section(card.get("heads"))}""")


def heads_section(heads: dict | None) -> str:
    """The speculator heads' part of the card (models/train_heads.py writes card["heads"])."""
    if not heads:
        return ""
    what = {"head-e3": "EAGLE-3 (`eagle3`)", "head-e1": "EAGLE-1 (`eagle`)", "head-medusa": "Medusa (`medusa`)",
            "target-mtp": "the target as MiMo + 1 MTP layer (`mtp`)"}
    rows = [f"| {name} | {what[name]} | {m['params']:,} | {m['final_train_kl']} | "
            f"{', '.join(f'{x:.2f}' for x in m['held_out_argmax_agreement_per_step'])} |"
            for name, m in heads["models"].items()]
    return f"""
## Speculator heads

Trained by `models/train_heads.py` on the target above (seed {SEED}) in {heads['train_seconds']} s on 2 CPU
cores: {heads['steps']} steps of batch {heads['batch']} x {heads['seq_len']} tokens of the same training code, KL to the
target's next-token distribution, each EAGLE-style head unrolled {heads['unroll']} draft steps on its own output.
EAGLE-3 reads vLLM's auxiliary hidden states {heads['aux_layers']} (id i: the target's residual stream after its
first i layers; named in its config.json).
Heads share the target's embedding and LM head, except target-mtp, which holds the whole target.

| folder | method | parameters | final train KL | held-out top-1 agreement per draft position (1..5) |
|---|---|---|---|---|
{chr(10).join(rows)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "fixture")
    parser.add_argument("--target-steps", type=int, default=1200)
    parser.add_argument("--draft-steps", type=int, default=400)
    parser.add_argument("--misaligned-steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--card-only", action="store_true", help="rewrite MODEL_CARD.md from OUT/card.json")
    args = parser.parse_args()
    if args.card_only:
        write_model_card(json.loads((args.out / "card.json").read_text()), HERE / "MODEL_CARD.md")
        return
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.time()

    train, held_out, prose = stdlib_sources()
    tokenizer = train_tokenizer([t for _, t in train] + [prose])
    code = token_stream(tokenizer, [t for _, t in train])
    prose_ids = token_stream(tokenizer, prose.split("\n\n\n"))
    held = token_stream(tokenizer, [t for _, t in held_out])
    print(f"corpus: {len(train)} train files ({len(code)} tokens), {len(held_out)} held out "
          f"({len(held)} tokens), prose {len(prose_ids)} tokens", flush=True)
    eval_windows = next(batches(held, 32, args.seq, SEED + 7))[:, :-1]

    target = llama(TARGET_SHAPE, tokenizer)
    target_loss = fit(target, batches(code, args.batch, args.seq, SEED), args.target_steps, 2e-3,
                      lm_loss, "target")
    with torch.no_grad():
        target_eval = lm_loss(target, next(batches(held, 32, args.seq, SEED + 7))).item()

    aligned = llama(DRAFT_SHAPE, tokenizer)
    seed_draft_from_target(aligned, target)
    aligned_loss = fit(aligned, batches(code, args.batch, args.seq, SEED + 1), args.draft_steps, 1e-3,
                       distil_loss(target), "aligned")

    misaligned = llama(DRAFT_SHAPE, tokenizer)
    mis_loss = fit(misaligned, batches(prose_ids, args.batch, args.seq, SEED + 2), args.misaligned_steps,
                   2e-3, lm_loss, "misaligned")

    card = {
        "seed": SEED, "python": sysconfig.get_python_version(), "torch": torch.__version__,
        "vocab_size": len(tokenizer), "seq_len": args.seq, "batch": args.batch,
        "corpus_tokens": {"code_train": len(code), "code_held_out": len(held), "prose": len(prose_ids)},
        "models": {},
        "train_seconds": None,
    }
    for name, model, steps, loss, corpus in [
        ("target", target, args.target_steps, target_loss, "stdlib code"),
        ("aligned-draft", aligned, args.draft_steps, aligned_loss, "stdlib code (distilled from target)"),
        ("misaligned-draft", misaligned, args.misaligned_steps, mis_loss, "pydoc_data prose"),
    ]:
        params = save(model, tokenizer, args.out / name)
        entry = {"params": params, "steps": steps, "final_train_loss": round(loss, 4), "corpus": corpus,
                 "shape": TARGET_SHAPE if name == "target" else DRAFT_SHAPE}
        if name != "target":
            entry["held_out_argmax_agreement_with_target"] = round(
                argmax_agreement(model, target, eval_windows), 4)
        card["models"][name] = entry
    card["models"]["target"]["held_out_loss"] = round(target_eval, 4)
    prompts = cut_prompts(held_out, 256)
    PROMPTS_OUT.parent.mkdir(parents=True, exist_ok=True)
    PROMPTS_OUT.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    card["held_out_prompts"] = len(prompts)
    card["train_seconds"] = round(time.time() - t0)
    (args.out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    write_model_card(card, HERE / "MODEL_CARD.md")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
