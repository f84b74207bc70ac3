"""Train the speculator heads of the fixture target: EAGLE-3, EAGLE-1, Medusa and an MTP layer.

Each head reads the shipped target's hidden states (models/fixture/target, run by transformers in
float32) and is written in the checkpoint format vLLM loads for its method:

- ``head-e3``: EAGLE-3 (Li et al. 2025, arXiv:2503.01840): ``fc`` over the target's residual stream
  after its layers 1, 2 and 4 (vLLM's auxiliary layer ids 1, 2, 4), one decoder layer whose attention reads cat(embedding, hidden); shares
  the target's embedding and LM head (vLLM does when the head has none).
- ``head-e1``: EAGLE-1 (Li et al. 2024, arXiv:2401.15077): ``fc`` over cat(embedding, the target's
  final post-norm hidden state), one decoder layer without input norm; shares embedding and LM head.
- ``head-medusa``: Medusa-1 (Cai et al. 2024, arXiv:2401.10774): 5 residual blocks over the final
  hidden state, head i drafting the token i + 2 ahead, one LM head (the target's, ``original_lm_head``).
- ``target-mtp``: the fixture target's own weights as a ``MiMoForCausalLM`` (Qwen2-shaped; its q/k/v
  biases are zero, so it computes what the Llama target computes) with one trained MTP layer
  (``mimo_mtp.py``: norms of cat(previous pre-norm hidden, embedding), ``input_proj``, a decoder layer).

Why every name here is spelled as it is: the parameter names are those vLLM's loaders map
(``llama_eagle3.py``, ``llama_eagle.py``, ``medusa.py``, ``mimo_mtp.py`` of vLLM 0.32), and the
forward passes below mirror those files line for line, so what is trained is what vLLM runs.
Folder names avoid "eagle": vLLM turns a ``draft_model`` pairing into EAGLE when the path holds it.

Training (all four at once, one target forward per batch): KL to the target's next-token distribution
at the position each draft predicts, unrolled for ``--unroll`` draft steps on the head's own hidden
output (EAGLE-3's training-time test): at step s the head at chain start p attends the first step's
keys at positions <= p and its own chain's keys of steps 2..s, as vLLM's draft KV cache holds them.

Run: ``python models/train_heads.py`` after ``models/train_fixtures.py`` (``make models`` runs both).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_fixtures import SEED, batches, lr_at, stdlib_sources, token_stream, write_model_card  # noqa: E402

# EAGLE-3 reads vLLM's auxiliary hidden states with these ids: id i is the residual stream after the
# target's first i layers (0: the embeddings; 4, this target's depth: its last layer, pre-norm). The
# last one gives a 4-layer target's head what EAGLE-1 reads; vLLM's default for 4 layers collapses
# to two ids, so the head's config names them.
AUX_LAYERS = (1, 2, 4)
MEDUSA_HEADS = 5
RMS_EPS = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS))


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), -1)
    return x * cos + rotated * sin


def rope(positions: torch.Tensor, head_dim: int, theta: float = 10000.0):
    """cos, sin of shape [T, head_dim] (neox style, as Llama and Qwen2 in vLLM and transformers)."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    freqs = positions.float()[:, None] * inv[None]
    emb = torch.cat((freqs, freqs), -1)
    return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, width_in: int, width: int, heads: int, bias: bool):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.q_proj = nn.Linear(width_in, width, bias=bias)
        self.k_proj = nn.Linear(width_in, width, bias=bias)
        self.v_proj = nn.Linear(width_in, width, bias=bias)
        self.o_proj = nn.Linear(width, width, bias=False)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def qkv(self, x, step: int):
        """q, k, v [B, H, T, D] of chain starts 0..T-1 at draft step ``step`` (position p + step)."""
        t = x.shape[1]
        cos, sin = rope(torch.arange(t) + step, self.head_dim)
        return rotate(self.split(self.q_proj(x)), cos, sin), rotate(self.split(self.k_proj(x)), cos, sin), \
            self.split(self.v_proj(x))

    def forward(self, x, step: int, cache: list):
        """Attention of draft step ``step`` (0-based) for every chain start at once.

        ``cache`` holds (k, v) of earlier steps: step 0's keys are read causally (positions <= p),
        later steps' keys only at the same chain start p (the chain's own drafts).
        """
        q, k, v = self.qkv(x, step)
        cache.append((k, v))
        k0, v0 = cache[0]
        scale = 1.0 / math.sqrt(self.head_dim)
        t = x.shape[1]
        causal = (q @ k0.transpose(-1, -2)) * scale
        causal = causal.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        own = [((q * kk).sum(-1) * scale)[..., None] for kk, _ in cache[1:]]
        weights = torch.softmax(torch.cat([causal, *own], -1), -1)
        out = weights[..., :t] @ v0
        for i, (_, vv) in enumerate(cache[1:]):
            out = out + weights[..., t + i, None] * vv
        b = x.shape[0]
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, width: int, inner: int):
        super().__init__()
        self.gate_proj = nn.Linear(width, inner, bias=False)
        self.up_proj = nn.Linear(width, inner, bias=False)
        self.down_proj = nn.Linear(inner, width, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    """A Llama/Qwen2 decoder layer whose attention may read a wider input (EAGLE-3's 2 x width)."""

    def __init__(self, width: int, inner: int, heads: int, width_in: int | None = None,
                 input_norm: bool = True, bias: bool = False):
        super().__init__()
        self.input_layernorm = RMSNorm(width) if input_norm else None
        self.self_attn = Attention(width_in or width, width, heads, bias)
        self.post_attention_layernorm = RMSNorm(width)
        self.mlp = MLP(width, inner)


class Eagle3Head(nn.Module):
    """vLLM ``Eagle3LlamaForCausalLM`` (norm_before_residual false): returns (pre-norm hidden, normed)."""

    def __init__(self, width, inner, heads, aux_layers=AUX_LAYERS):
        super().__init__()
        self.aux_layers = tuple(aux_layers)
        self.fc = nn.Linear(width * len(self.aux_layers), width, bias=False)
        self.midlayer = Layer(width, inner, heads, width_in=2 * width)
        self.midlayer.hidden_norm = RMSNorm(width)
        self.norm = RMSNorm(width)

    def step(self, embeds, hidden, step, cache):
        if hidden.shape[-1] != embeds.shape[-1]:
            hidden = self.fc(hidden)
        m = self.midlayer
        residual = hidden
        x = torch.cat([m.input_layernorm(embeds), m.hidden_norm(hidden)], -1)
        residual = m.self_attn(x, step, cache) + residual
        prenorm = m.mlp(m.post_attention_layernorm(residual)) + residual
        return prenorm, self.norm(prenorm)


class Eagle1Head(nn.Module):
    """vLLM ``EagleLlamaForCausalLM``: fc(cat(embedding, hidden)), a layer without input norm; no final
    norm (its features live in the target's post-norm space)."""

    def __init__(self, width, inner, heads):
        super().__init__()
        self.fc = nn.Linear(2 * width, width, bias=False)
        self.layers = nn.ModuleList([Layer(width, inner, heads, input_norm=False)])

    def step(self, embeds, hidden, step, cache):
        layer = self.layers[0]
        residual = self.fc(torch.cat([embeds, hidden], -1))
        residual = layer.self_attn(residual, step, cache) + residual
        out = layer.mlp(layer.post_attention_layernorm(residual)) + residual
        return out, out


class MtpLayer(nn.Module):
    """vLLM ``MiMoMultiTokenPredictorLayer``: the next step reads its post-final-norm output."""

    def __init__(self, width, inner, heads):
        super().__init__()
        self.token_layernorm = RMSNorm(width)
        self.hidden_layernorm = RMSNorm(width)
        self.input_proj = nn.Linear(2 * width, width, bias=False)
        self.block = Layer(width, inner, heads, bias=True)
        self.final_layernorm = RMSNorm(width)

    def step(self, embeds, hidden, step, cache):
        b = self.block
        x = self.input_proj(torch.cat([self.hidden_layernorm(hidden), self.token_layernorm(embeds)], -1))
        residual = x
        residual = b.self_attn(b.input_layernorm(x), step, cache) + residual
        out = self.final_layernorm(b.mlp(b.post_attention_layernorm(residual)) + residual)
        return out, out


class MedusaHeads(nn.Module):
    """vLLM ``Medusa`` with one residual layer per head and the target's LM head."""

    def __init__(self, width, heads):
        super().__init__()
        self.blocks = nn.ModuleList(
            [nn.ModuleDict({"layers": nn.ModuleList([nn.Linear(width, width, bias=False)])}) for _ in range(heads)])
        for block in self.blocks:
            nn.init.zeros_(block["layers"][0].weight)  # start as the identity: head i = the target's guess

    def forward(self, hidden):
        return [hidden + F.silu(block["layers"][0](hidden)) for block in self.blocks]


class TargetFeatures:
    """The fixture target in float32 through transformers, with the hidden states each method reads."""

    def __init__(self, folder: Path, aux_layers=AUX_LAYERS):
        from transformers import AutoModelForCausalLM

        self.aux_layers = tuple(aux_layers)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.config = self.model.config
        self.captured: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.model.model.layers):
            layer.register_forward_hook(self._capture(i))

    def _capture(self, index):
        def hook(_module, _args, output):
            self.captured[index] = output[0] if isinstance(output, tuple) else output
        return hook

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor, labels_from: int = 0) -> dict[str, torch.Tensor]:
        """[B, T] token ids -> the features (each [B, T, ...]) and the log-probabilities of the
        next token at positions ``labels_from``..T-1 ([B, T - labels_from, V]; the LM head over
        positions no loss reads is most of the target's cost)."""
        self.model.model(ids)
        pre = self.captured[len(self.model.model.layers) - 1]
        post = self.model.model.norm(pre)
        return {
            # Auxiliary id i: the residual stream after the first i layers.
            "aux": torch.cat([self.captured[i - 1] for i in self.aux_layers], -1),
            "prenorm": pre,
            "postnorm": post,
            "logp": F.log_softmax(self.lm_head(post[:, labels_from:]), -1),
        }

    def embed(self, ids):
        return self.model.model.embed_tokens(ids)

    def lm_head(self, x):
        return self.model.lm_head(x)


def kl(logits, target_logp):
    return F.kl_div(F.log_softmax(logits, -1).flatten(0, 1), target_logp.flatten(0, 1), log_target=True,
                    reduction="batchmean")


def unrolled_loss(head, target: TargetFeatures, ids, feats, feature: str, unroll: int, first: int):
    """Mean KL over ``unroll`` draft steps for the chains starting at ``first``..end of ``feats``.

    Chain p's step s (0-based) reads, at s = 0, the target's feature at p and the token at p + 1;
    later, the head's own output of step s - 1 and the token at p + s + 1 (the draft that was
    accepted when greedy); it predicts the target's distribution at p + s + 1. Positions before
    ``first`` are the context the chains attend; the LM head and the KL, most of the cost, are
    taken only at the chain starts.
    """
    length = feats[feature].shape[1]
    hidden, cache, total = feats[feature], [], 0.0
    for s in range(unroll):
        shift = s + 1
        hidden, normed = head.step(target.embed(ids[:, shift: shift + length]), hidden, s, cache)
        label = feats["logp"][:, first + shift - feats["labels_from"]:][:, : length - first]
        total = total + kl(target.lm_head(normed[:, first:]), label)
    return total / unroll


def medusa_loss(heads: MedusaHeads, target: TargetFeatures, feats, first: int):
    """Head i at position p predicts the target's distribution at p + i + 1 (the token p + i + 2)."""
    total, length = 0.0, feats["postnorm"].shape[1]
    for i, out in enumerate(heads(feats["postnorm"][:, first:])):
        label = feats["logp"][:, first + i + 1 - feats["labels_from"]:][:, : length - first]
        total = total + kl(target.lm_head(out), label)
    return total / len(heads.blocks)


@torch.no_grad()
def greedy_agreement(head, target, ids, feats, feature, steps) -> list[float]:
    """Teacher-forced top-1 agreement of each draft step with the target, on held-out windows."""
    t, hidden, cache, out = ids.shape[1], feats[feature], [], []
    for s in range(steps):
        shift = s + 1
        tokens = torch.cat([ids[:, shift:], ids[:, -1:].expand(-1, shift)], 1)
        hidden, normed = head.step(target.embed(tokens), hidden, s, cache)
        guess = target.lm_head(normed).argmax(-1)[:, : t - shift]
        out.append(round((guess == feats["logp"][:, shift:].argmax(-1)).float().mean().item(), 4))
    return out


def optimise(opt, losses: dict, params, ema: dict) -> None:
    """One step on the sum of ``losses`` (gradients clipped to norm 1); ``ema`` smooths each loss for the log."""
    opt.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    for k, v in losses.items():
        ema[k] = v.item() if k not in ema else 0.98 * ema[k] + 0.02 * v.item()


def log_step(label: str, step: int, steps: int, ema: dict, t0: float) -> None:
    shown = " ".join(f"{k} {v:.3f}" for k, v in ema.items())
    print(f"[{label}] step {step + 1}/{steps} KL {shown} ({time.time() - t0:.0f}s)", flush=True)


def save_safetensors(tensors: dict[str, torch.Tensor], folder: Path, config: dict) -> int:
    from safetensors.torch import save_file

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return sum(v.numel() for v in tensors.values())


def layer_tensors(layer: Layer, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in layer.state_dict().items()}


def head_config(cfg) -> dict:
    """What every head's config.json copies from the target's."""
    base = {k: getattr(cfg, k) for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                          "num_key_value_heads", "rms_norm_eps", "vocab_size",
                                          "max_position_embeddings", "head_dim")}
    base.update(bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id, rope_theta=10000.0,
                hidden_act="silu", torch_dtype="float16")
    return base


def write_eagle3(folder: Path, base: dict, cfg, e3: Eagle3Head) -> int:
    """``e3`` as vLLM's ``LlamaForCausalLMEagle3`` checkpoint: its attention has a key and value
    per head (``Attention`` above), whatever the target's grouping."""
    tensors = {"fc.weight": e3.fc.weight, "norm.weight": e3.norm.weight, **layer_tensors(e3.midlayer, "midlayer")}
    aux = list(e3.aux_layers)
    return save_safetensors(tensors, folder, {
        **base, "num_key_value_heads": base["num_attention_heads"],
        "architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "num_hidden_layers": 1,
        "tie_word_embeddings": False, "draft_vocab_size": cfg.vocab_size, "target_hidden_size": cfg.hidden_size,
        "eagle_aux_hidden_state_layer_ids": aux,
        "eagle_config": {"eagle_aux_hidden_state_layer_ids": aux, "use_aux_hidden_state": True},
    })


def write_heads(out: Path, target_dir: Path, cfg, e3, e1, medusa, mtp, target) -> dict[str, int]:
    base = head_config(cfg)
    sizes = {}
    sizes["head-e3"] = write_eagle3(out / "head-e3", base, cfg, e3)
    e1_tensors = {"fc.weight": e1.fc.weight, **layer_tensors(e1.layers[0], "layers.0")}
    sizes["head-e1"] = save_safetensors(e1_tensors, out / "head-e1", {
        **base, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 1,
        "tie_word_embeddings": False,
    })
    medusa_tensors = {f"blocks.{i}.layers.0.weight": b["layers"][0].weight for i, b in enumerate(medusa.blocks)}
    medusa_tensors["lm_head.weight"] = target.model.lm_head.weight
    sizes["head-medusa"] = save_safetensors(medusa_tensors, out / "head-medusa", {
        "architectures": ["MedusaModel"], "model_type": "medusa", "hidden_size": cfg.hidden_size,
        "vocab_size": cfg.vocab_size, "truncated_vocab_size": cfg.vocab_size, "num_heads": MEDUSA_HEADS,
        "num_hidden_layers": 1, "original_lm_head": True, "torch_dtype": "float16",
    })
    # The MTP target: the Llama target's tensors under Qwen2 names with zero q/k/v biases, untied
    # (vLLM's MTP loader reads lm_head by name), and the MTP layer as MiMo checkpoints store it.
    sd = {k: v for k, v in target.model.state_dict().items() if "rotary" not in k}
    sd["lm_head.weight"] = target.model.lm_head.weight.clone()
    for i in range(cfg.num_hidden_layers):
        for p in ("q", "k", "v"):
            rows = sd[f"model.layers.{i}.self_attn.{p}_proj.weight"].shape[0]
            sd[f"model.layers.{i}.self_attn.{p}_proj.bias"] = torch.zeros(rows)
    for k, v in mtp.state_dict().items():
        sd["model.mtp_layers.0." + k.replace("block.", "")] = v
    sizes["target-mtp"] = save_safetensors(sd, out / "target-mtp", {
        **base, "architectures": ["MiMoForCausalLM"], "model_type": "qwen2",
        "num_hidden_layers": cfg.num_hidden_layers, "num_nextn_predict_layers": 1,
        "tie_word_embeddings": False, "use_sliding_window": False, "sliding_window": None,
        "max_window_layers": cfg.num_hidden_layers, "attention_dropout": 0.0,
    })
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        shutil.copy(target_dir / name, out / "target-mtp" / name)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "fixture")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--unroll", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--positions", type=int, default=32, help="chain starts per window that get a loss")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    t0 = time.time()
    target_dir = args.out / "target"
    target = TargetFeatures(target_dir)
    cfg = target.config
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(target_dir)
    train, held_out, _ = stdlib_sources()
    code = token_stream(tokenizer, [t for _, t in train])
    held = token_stream(tokenizer, [t for _, t in held_out])
    width, inner, heads = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads
    torch.manual_seed(SEED)
    e3, e1, mtp = Eagle3Head(width, inner, heads), Eagle1Head(width, inner, heads), MtpLayer(width, inner, heads)
    medusa = MedusaHeads(width, MEDUSA_HEADS)
    with torch.no_grad():
        for p in ("q", "k", "v"):
            nn.init.zeros_(getattr(mtp.block.self_attn, f"{p}_proj").bias)
    trained = nn.ModuleList([e3, e1, mtp, medusa])
    opt = torch.optim.AdamW(trained.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.95))
    data = batches(code, args.batch, args.seq, SEED + 11)
    gen = torch.Generator().manual_seed(SEED + 12)
    ema: dict[str, float] = {}
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr)
        ids = next(data)[:, :-1]
        # A block of chain starts at a random offset: the head runs on the context before it and
        # the block, the target's LM head on the positions the block's steps predict.
        reach = max(args.unroll, MEDUSA_HEADS)
        first = int(torch.randint(0, args.seq - reach - args.positions + 1, (1,), generator=gen))
        end = first + args.positions
        feats = target(ids[:, : end + reach], labels_from=first + 1)
        feats = {k: (v if k == "logp" else v[:, :end]) for k, v in feats.items()}
        feats["labels_from"] = first + 1
        losses = {
            "e3": unrolled_loss(e3, target, ids, feats, "aux", args.unroll, first),
            "e1": unrolled_loss(e1, target, ids, feats, "postnorm", args.unroll, first),
            "mtp": unrolled_loss(mtp, target, ids, feats, "prenorm", args.unroll, first),
            "medusa": medusa_loss(medusa, target, feats, first),
        }
        optimise(opt, losses, trained.parameters(), ema)
        if step % 50 == 0 or step == args.steps - 1:
            log_step("heads", step, args.steps, ema, t0)
    trained.eval()
    windows = next(batches(held, 16, args.seq, SEED + 7))[:, :-1]
    feats = target(windows)
    agreement = {
        "head-e3": greedy_agreement(e3, target, windows, feats, "aux", 5),
        "head-e1": greedy_agreement(e1, target, windows, feats, "postnorm", 5),
        "target-mtp": greedy_agreement(mtp, target, windows, feats, "prenorm", 5),
    }
    with torch.no_grad():
        outs = medusa(feats["postnorm"])
        agreement["head-medusa"] = [
            round((target.lm_head(o).argmax(-1)[:, : -(i + 1)] == feats["logp"][:, i + 1:].argmax(-1))
                  .float().mean().item(), 4) for i, o in enumerate(outs)]
    sizes = write_heads(args.out, target_dir, cfg, e3, e1, medusa, mtp, target)
    card_path = args.out / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {"models": {}}
    card["heads"] = {
        "steps": args.steps, "batch": args.batch, "seq_len": args.seq, "unroll": args.unroll, "lr": args.lr,
        "aux_layers": list(AUX_LAYERS), "train_seconds": round(time.time() - t0),
        "models": {name: {"params": sizes[name], "final_train_kl": round(ema[key], 4),
                          "held_out_argmax_agreement_per_step": agreement[name]}
                   for name, key in (("head-e3", "e3"), ("head-e1", "e1"), ("head-medusa", "medusa"),
                                     ("target-mtp", "mtp"))},
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    if args.out == HERE / "fixture":
        write_model_card(card, HERE / "MODEL_CARD.md")
    print(json.dumps(card["heads"], indent=2))


if __name__ == "__main__":
    main()
