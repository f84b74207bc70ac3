"""A speculator head checked against its method and its target before any engine is built, from the
head's config.json and its weights' shapes (the safetensors header; no weights are read).

vLLM builds a mismatched head and fails on the first request, deep inside the drafter (an EAGLE-3
head whose ``fc`` expects three auxiliary hidden states when the target's default layers collapse to
two: "shape '[-1, 768]' is invalid for input of size 35840"), or not at all: Medusa with fewer heads
than k runs the missing heads uninitialised. Each check here names the field to fix instead.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

# Methods whose head is checked here (vLLM 0.32: llama_eagle3.py, llama_eagle.py, medusa.py).
CHECKED_METHODS = ("eagle3", "eagle", "medusa")
# Heads that are not language models, by a word of their architecture or model type -> their method.
ARCHITECTURE_WORDS = (("eagle3", "eagle3"), ("eagle", "eagle"), ("medusa", "medusa"),
                      ("mlpspeculator", "mlp_speculator"), ("mtp", "mtp"))


class HeadError(ValueError):
    """The head cannot run with this method and target; the message says what to change."""


def weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from the header of every ``*.safetensors`` file in ``folder``.

    The format's header is an 8-byte little-endian length and a JSON table (safetensors' spec);
    reading it costs nothing however large the weights are. Raises HeadError on a bad file."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with path.open("rb") as f:
                (size,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(size))
        except (OSError, struct.error, ValueError) as exc:
            raise HeadError(f"{path} is not a readable safetensors file ({exc}); re-download or rebuild it") from None
        shapes.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    return shapes


def _find(shapes: dict[str, tuple[int, ...]], suffix: str) -> tuple[int, ...] | None:
    return next((shape for name, shape in shapes.items() if name.endswith(suffix)), None)


def head_method(folder: Path, cfg: dict) -> tuple[str, str] | None:
    """(the method, what shows it) when ``folder`` holds a speculator head rather than a whole
    model; None for a language model. EAGLE heads are often saved under their base architecture's
    name, so their weights tell too: an fc over the target's states and no token embedding."""
    names = [a.lower() for a in cfg.get("architectures") or []] + [str(cfg.get("model_type", "")).lower()]
    for word, method in ARCHITECTURE_WORDS:
        if any(word in name for name in names):
            return method, f"architectures {cfg.get('architectures')}"
    try:
        shapes = weight_shapes(folder)
    except HeadError:
        return None  # unreadable weights: vLLM's loader says so
    fc = _find(shapes, "fc.weight")
    if fc is None or any("embed_tokens" in name for name in shapes):
        return None
    method = "eagle" if fc[1] == 2 * int(cfg.get("hidden_size") or 0) else "eagle3"
    return method, f"an fc of {fc[1]} inputs and no token embedding"


def eagle3_aux_layers(head_cfg: dict, target_layers: int) -> tuple[tuple[int, ...], bool]:
    """(vLLM's auxiliary hidden state ids for the head, whether the head's config named them); id i is
    the target's residual stream after its first i layers, so 0..L are valid (llama.py,
    _maybe_add_hidden_state). Without names vLLM takes (2, L // 2, L - 3) (interfaces.py,
    get_eagle3_default_aux_hidden_state_layers), which repeats layers on shallow targets."""
    ids = head_cfg.get("eagle_aux_hidden_state_layer_ids") or (head_cfg.get("eagle_config") or {}).get(
        "eagle_aux_hidden_state_layer_ids")
    if ids:
        return tuple(int(i) for i in ids), True
    return (2, target_layers // 2, target_layers - 3), False


def check_eagle3(head_cfg: dict, shapes: dict, target_cfg: dict) -> None:
    layers = int(target_cfg.get("num_hidden_layers") or 0)
    width = int(target_cfg.get("hidden_size") or 0)
    ids, named = eagle3_aux_layers(head_cfg, layers)
    outside = [i for i in ids if not 0 <= i <= layers]
    if outside:
        raise HeadError(f"eagle_aux_hidden_state_layer_ids {list(ids)} name layers {outside} outside the target's "
                        f"0..{layers} (id i: the hidden state after i layers); set them in the head's config.json "
                        f"to layers the target has")
    fc = _find(shapes, "fc.weight")
    if fc is None or not width:
        return
    taken = len(set(ids))  # vLLM captures each layer once, however often it is named
    if fc[1] != taken * width:
        where = ("its config names" if named else
                 f"vLLM's default for a {layers}-layer target (2, L // 2, L - 3) gives")
        raise HeadError(f"the EAGLE-3 head's fc takes {fc[1]} = {fc[1] // max(width, 1)} x {width} inputs, but {where} "
                        f"{taken} distinct auxiliary layers {sorted(set(ids))}: set eagle_aux_hidden_state_layer_ids in "
                        f"the head's config.json to the {fc[1] // max(width, 1)} layers it was trained on")


def check_eagle(head_cfg: dict, shapes: dict, target_cfg: dict) -> None:
    width = int(target_cfg.get("hidden_size") or 0)
    fc = _find(shapes, "fc.weight")
    if fc is not None and width and fc[1] != 2 * width:
        raise HeadError(f"the EAGLE head's fc takes {fc[1]} inputs, but EAGLE reads cat(embedding, hidden) = "
                        f"2 x {width} of this target: the head was trained for another target")


def check_medusa(head_cfg: dict, shapes: dict, target_cfg: dict, max_k: int) -> None:
    heads = {name.split(".")[1] for name in shapes if name.startswith("blocks.")}
    if heads and len(heads) < max_k:
        raise HeadError(f"the Medusa checkpoint holds {len(heads)} heads but the pairing asks k up to {max_k}: vLLM "
                        f"sets the head count from k and runs the missing heads uninitialised; use k <= {len(heads)}")


def check(method: str, head: Path, head_cfg: dict, target_cfg: dict, max_k: int) -> None:
    """Raises HeadError when ``head`` (a folder) cannot serve ``method`` for this target."""
    width, head_width = target_cfg.get("hidden_size"), head_cfg.get("target_hidden_size", head_cfg.get("hidden_size"))
    if width and head_width and int(width) != int(head_width):
        raise HeadError(f"the head's hidden_size {head_width} differs from the target's {width}: a {method} head "
                        f"reads the target's hidden states, so it must be trained for this target")
    vocab, head_vocab = target_cfg.get("vocab_size"), head_cfg.get("vocab_size")
    shapes = weight_shapes(head)
    if vocab and head_vocab and int(vocab) != int(head_vocab) and _find(shapes, "d2t") is None:
        raise HeadError(f"the head's vocab_size {head_vocab} differs from the target's {vocab} and it has no "
                        f"draft-to-target map (d2t): it was trained for another tokenizer")
    if method == "eagle3":
        check_eagle3(head_cfg, shapes, target_cfg)
    elif method == "eagle":
        check_eagle(head_cfg, shapes, target_cfg)
    elif method == "medusa":
        check_medusa(head_cfg, shapes, target_cfg, max_k)


def mtp_layers(target_cfg: dict) -> int:
    """How many MTP layers the target's checkpoint declares (0: it has none for method 'mtp')."""
    for key in ("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_layers", "n_predict"):
        if target_cfg.get(key):
            return int(target_cfg[key])
    return 0
