"""Known, injected regressions for proving that the gate catches them."""

import contextlib
import time

from specgate.engines import runner


@contextlib.contextmanager
def corrupted_drafts(engine, every: int):
    """Make every ``every``-th proposal's first draft token wrong (token id + 1 mod vocab).

    At temperature 0 a wrong first token rejects the whole step, so the acceptance rate falls by
    about 1/every (e.g. 5% for every=20) while the emitted tokens stay the target's.
    """
    drafter = runner.drafter(engine.llm)
    vocab = engine.llm.llm_engine.model_config.get_vocab_size()
    calls = {"n": 0}

    def make(propose):
        def propose_with_fault(*args, **kwargs):
            drafts = propose(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] % every == 0:
                drafts = drafts.clone()
                drafts[:, 0] = (drafts[:, 0] + 1) % vocab
            return drafts
        return propose_with_fault

    with runner.wrapped(drafter, "propose", make):
        yield calls


@contextlib.contextmanager
def slower_requests(engine, fraction: float):
    """Each generate call takes ``fraction`` longer (a sleep proportional to its own duration)."""
    def make(generate):
        def slow_generate(*args, **kwargs):
            started = time.perf_counter()
            out = generate(*args, **kwargs)
            time.sleep((time.perf_counter() - started) * fraction)
            return out
        return slow_generate

    with runner.wrapped(engine.llm, "generate", make):
        yield
