"""The Hugging Face hub and its local cache, in one place: the offline flags, a reachability probe
with a short timeout, cache-only loading of data sets, model folders (a local path, or a hub
id's cached snapshot) and their tokenizers. Failures are HubError, saying what to run to fix
them; preflight and the prompt sets report them as their own errors."""

from __future__ import annotations

import contextlib
import functools
import os
import urllib.request
from pathlib import Path

HUB_TIMEOUT_S = 3.0


class HubError(ValueError):
    pass


def offline_flag() -> bool:
    """HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE set: never ask the hub."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(url: str = "https://huggingface.co/api/datasets?limit=1", timeout: float = HUB_TIMEOUT_S) -> bool:
    """One HTTP request with a short timeout: the hub libraries retry for half a minute when offline,
    and a TCP connect alone proves nothing behind proxies that accept every connection."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except (OSError, ValueError):  # URLError, timeouts, refused, TLS failures
        return False


@contextlib.contextmanager
def cache_only(datasets):
    """Cache only, for this call: both libraries read their offline flag once, at import."""
    import huggingface_hub.constants as hub_constants

    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def model_dir(ref: str, role: str) -> Path | None:
    """The local folder of a model (a path, or a hub id's cached snapshot); None when only the
    hub has it and the hub answers (vLLM will download it)."""
    if ref.startswith("/"):
        return Path(ref)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(ref, "config.json")
    if isinstance(cached, str):
        return Path(cached).parent
    offline = offline_flag()
    if offline or not hub_reachable("https://huggingface.co/api/models?limit=1"):
        why = "HF_HUB_OFFLINE is set" if offline else "the hub (huggingface.co) is unreachable"
        raise HubError(f"{role} {ref!r} is not in the local Hugging Face cache and {why}: run "
                       f"`hf download {ref}` where the hub is reachable (or copy its cache), or give a local path")
    check_access(ref, role)
    return None


def check_access(ref: str, role: str) -> None:
    """The hub has ``ref`` and this machine's token (HF_TOKEN or `hf auth login`) may read it: a
    typo'd id or a gated model without access fails here, not after an engine was built. Other
    failures (timeouts, the hub's own errors) pass: vLLM's download reports them."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        HfApi().auth_check(ref)
    except GatedRepoError:
        raise HubError(f"{role} {ref!r} is gated and this machine's token may not read it: accept its licence at "
                       f"https://huggingface.co/{ref} with your account, then set HF_TOKEN (or run `hf auth login`)"
                       ) from None
    except RepositoryNotFoundError:
        raise HubError(f"{role} {ref!r}: the hub has no such model, or it is private and this machine's token "
                       f"may not read it: check the id's spelling (owner/name) or set HF_TOKEN") from None
    except (HfHubHTTPError, OSError, ValueError):
        pass


@functools.lru_cache(maxsize=16)
def tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - tokenizer loaders raise many types
        raise HubError(f"cannot load the tokenizer in {folder}: {type(exc).__name__}: {exc}") from None
