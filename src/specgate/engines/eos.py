"""A frequent token named the target tokenizer's EOS while a cell runs (features.Feature.eos_text).

The fixture target ends text by its own EOS on 1 of 16 code prompts, and then only as its first
token, so an EOS never falls inside a draft run there. A tokenizer that names a frequent token as
its EOS makes most requests end by EOS mid-block, through vLLM's own EOS path: its renderer reads
the tokenizer's EOS id for every request (SamplingParams.eos_token_id, checked in the scheduler's
check_stop, masked by min_tokens), and the target's own EOS, from its generation config, still
stops as a stop id. In-process engines only: the tokenizer object is vLLM's, shared by every
engine of the process on the same target, so it is restored when the cell's run ends.
"""

from __future__ import annotations

import contextlib

from specgate.engines.errors import EngineError


@contextlib.contextmanager
def named(llm, text: str):
    """While active, ``llm``'s tokenizer names the one token of ``text`` its EOS; yields that id
    (None and no change for text ""). EngineError if ``text`` is not exactly one token."""
    if not text:
        yield None
        return
    tokenizer = llm.get_tokenizer()
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise EngineError(f"the EOS text {text!r} is {len(ids)} tokens for this tokenizer, not one")
    before = tokenizer.eos_token_id
    tokenizer.eos_token_id = ids[0]
    try:
        yield ids[0]
    finally:
        tokenizer.eos_token_id = before
