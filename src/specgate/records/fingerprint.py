"""Model identity by content: a baseline is tied to the weights and tokenizer it was measured with,
not to the folder they happen to live in (checkouts, caches and mounts differ between machines).

A local folder is hashed over every regular file in it (names and bytes, in sorted order); a hub
id is kept as it is (hub revisions are the hub's own content addresses).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

CHUNK = 1 << 20


@functools.lru_cache(maxsize=64)
def _folder_digest(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                h.update(block)
    return h.hexdigest()[:16]


def model_id(ref: str | None) -> str | None:
    """``sha256:<16 hex>`` for a local model folder, ``hub:<id>`` for anything else, None for no model."""
    if ref is None:
        return None
    path = Path(ref)
    if path.is_dir():
        # Re-hash only when a file in it changed (size or mtime), e.g. after `make models`.
        stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*")) if p.is_file())
        return "sha256:" + _folder_digest(str(path.resolve()), stamp)
    return "hub:" + ref


def tokens_digest(token_ids) -> str:
    """A short, stable digest of one request's emitted token ids (for baseline records)."""
    return hashlib.sha256(",".join(map(str, token_ids)).encode()).hexdigest()[:12]


def text_digest(text: str) -> str:
    """A short, stable digest of a text (e.g. the ids of the prompts a pairing dropped)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
