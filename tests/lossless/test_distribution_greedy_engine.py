"""End to end: at temperature 0, speculation must not change a single emitted token.

Each CPU method on the fixture models runs the same prompts as the no-speculation engine;
any difference is reported with the request and the first differing position.
"""

import pytest

from paths import CPU_CONFIG
from specgate.engines.pool import EnginePool
from specgate.matrix import config, prompts

pytestmark = pytest.mark.engine
NUM_PROMPTS, NEW_TOKENS, K = 8, 32, 3


# The drafts and ngram at k 3 (the misaligned draft runs in batch mode in the CPU default). The heads'
# tokens are checked the same way by tests/product/test_planted_head_bugs.py (clean vLLM passes).
CELLS = [f"fixture-aligned-draft_model-k{K}", f"fixture-misaligned-draft_model-k{K}-batch", f"fixture-ngram-k{K}"]


@pytest.fixture(scope="module")
def outputs():
    matrix = config.load(CPU_CONFIG, {"num_prompts": NUM_PROMPTS, "max_new_tokens": NEW_TOKENS, "rounds": 1,
                                      "paired_control": False})
    by_id = {c.id: c for c in matrix.conditions()}
    pool, out = EnginePool(), {}
    try:
        for cid in CELLS:
            for c in (by_id[cid].control, by_id[cid]):
                assert c.pairing.temperature == 0.0
                if c.id not in out:
                    run = pool.get(c).run(prompts.load(c.pairing.prompt_set, NUM_PROMPTS, c.pairing.seed), c)
                    out[c.id] = [r.output_token_ids for r in run.requests]
        return {cid: (out[cid], out[by_id[cid].control.id]) for cid in CELLS}
    finally:
        pool.close()


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


@pytest.mark.parametrize("cid", CELLS)
def test_distribution_greedy_speculation_emits_exactly_the_target_tokens(outputs, cid):
    spec_tokens, control_tokens = outputs[cid]
    mismatches = [(i, first_difference(spec, base)) for i, (spec, base) in enumerate(zip(spec_tokens, control_tokens))]
    mismatches = [(i, pos) for i, pos in mismatches if pos is not None]
    assert not mismatches, f"{cid}: requests differ from no speculation at (request, first position): {mismatches}"
