"""Preflight by method: a speculator head that vLLM would build and then crash on (or run half
uninitialised) is refused from its config and weight shapes, naming the field to fix."""

import json

import pytest
import torch
from safetensors.torch import save_file

from paths import FIXTURE_MODELS
from specgate.matrix import config, heads, preflight

TARGET = FIXTURE_MODELS / "target"
TARGET_CFG = json.loads((TARGET / "config.json").read_text())  # 4 layers x 256, vocabulary 4096


def head(tmp_path, name: str, cfg: dict, tensors: dict[str, tuple[int, ...]]):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    save_file({k: torch.zeros(shape) for k, shape in tensors.items()}, str(folder / "model.safetensors"))
    return folder


def pairing(tmp_path, method: str, draft, k: str = "[1, 2, 3]", target=TARGET):
    path = tmp_path / "p.toml"
    draft_line = f"draft = '{draft}'\n" if draft else ""
    path.write_text(f"[[pairing]]\nname = 'x'\ntarget = '{target}'\n{draft_line}method = '{method}'\nk = {k}\n"
                    f"num_prompts = 2\n")
    return config.load(path).pairings[0]


E3_WEIGHTS = {"fc.weight": (256, 768), "midlayer.self_attn.q_proj.weight": (256, 512)}


def test_an_eagle3_head_without_its_layers_is_refused_where_vllm_would_crash_on_the_first_request(tmp_path):
    # vLLM's default (2, L // 2, L - 3) is (2, 2, 1) on 4 layers: two distinct states for an fc of three.
    folder = head(tmp_path, "e3", {"hidden_size": 256, "vocab_size": 4096}, E3_WEIGHTS)
    with pytest.raises(preflight.PreflightError, match=r"fc takes 768 = 3 x 256 .* default .* gives 2 distinct "
                                                       r"auxiliary layers \[1, 2\]: set eagle_aux_hidden_state_layer_ids"):
        preflight.check(pairing(tmp_path, "eagle3", folder))


def test_an_eagle3_head_naming_its_layers_passes_and_layers_outside_the_target_fail(tmp_path):
    ok = head(tmp_path, "ok", {"hidden_size": 256, "vocab_size": 4096,
                               "eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 2, 3]}}, E3_WEIGHTS)
    preflight.check(pairing(tmp_path, "eagle3", ok))
    bad = head(tmp_path, "bad", {"hidden_size": 256, "vocab_size": 4096,
                                 "eagle_aux_hidden_state_layer_ids": [1, 2, 7]}, E3_WEIGHTS)
    with pytest.raises(heads.HeadError, match=r"layers \[7\] outside the target's 0..4"):
        heads.check("eagle3", bad, json.loads((bad / "config.json").read_text()), TARGET_CFG, 3)


def test_a_medusa_checkpoint_with_fewer_heads_than_k_is_refused(tmp_path):
    folder = head(tmp_path, "m", {"model_type": "medusa", "hidden_size": 256, "vocab_size": 4096, "num_heads": 3},
                  {f"blocks.{i}.layers.0.weight": (256, 256) for i in range(3)})
    preflight.check(pairing(tmp_path, "medusa", folder, k="[1, 2, 3]"))
    with pytest.raises(preflight.PreflightError, match="holds 3 heads but the pairing asks k up to 5"):
        preflight.check(pairing(tmp_path, "medusa", folder, k="[1, 5]"))


@pytest.mark.parametrize("cfg,tensors,message", [
    ({"hidden_size": 512, "vocab_size": 4096}, {"fc.weight": (512, 1024)}, "hidden_size 512 differs from the target's 256"),
    ({"hidden_size": 256, "vocab_size": 32000}, {"fc.weight": (256, 512)}, "vocab_size 32000 .* no draft-to-target map"),
    ({"hidden_size": 256, "vocab_size": 4096}, {"fc.weight": (256, 768)}, "fc takes 768 inputs, but EAGLE reads"),
])
def test_an_eagle_head_for_another_target_is_refused(tmp_path, cfg, tensors, message):
    with pytest.raises(preflight.PreflightError, match=message):
        preflight.check(pairing(tmp_path, "eagle", head(tmp_path, "e1", cfg, tensors)))


def test_a_draft_vocabulary_with_its_map_passes(tmp_path):
    folder = head(tmp_path, "e3", {"hidden_size": 256, "vocab_size": 4096, "draft_vocab_size": 1024,
                                   "eagle_aux_hidden_state_layer_ids": [1, 2, 3]},
                  {**E3_WEIGHTS, "d2t": (1024,)})
    heads.check("eagle3", folder, {**json.loads((folder / "config.json").read_text()), "vocab_size": 1024},
                TARGET_CFG, 3)


def test_a_target_without_mtp_layers_is_refused_for_mtp(tmp_path):
    with pytest.raises(preflight.PreflightError, match="declares none \\(num_nextn_predict_layers\\)"):
        preflight.check(pairing(tmp_path, "mtp", None))


def test_a_broken_weights_file_is_one_clear_error(tmp_path):
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(heads.HeadError, match="is not a readable safetensors file"):
        heads.weight_shapes(folder)


@pytest.mark.parametrize("method,folder", [("eagle3", "head-e3"), ("eagle", "head-e1"), ("medusa", "head-medusa")])
def test_the_shipped_heads_pass_their_method_and_are_refused_as_draft_models(tmp_path, method, folder):
    preflight.check(pairing(tmp_path, method, FIXTURE_MODELS / folder, k="[1, 2, 3, 4, 5]"))
    with pytest.raises(preflight.PreflightError, match=f"speculator head for method '{method}'"):
        preflight.check(pairing(tmp_path, "draft_model", FIXTURE_MODELS / folder))


def test_the_shipped_mtp_target_declares_its_layer(tmp_path):
    preflight.check(pairing(tmp_path, "mtp", None, target=FIXTURE_MODELS / "target-mtp"))
