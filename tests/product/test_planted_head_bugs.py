"""Bugs planted in the paths of the heads production runs (EAGLE-3, EAGLE, Medusa, MTP; in
tests/vllm_plants.py) are each caught by the checks a benchmark runs, while clean vLLM passes them.

The target still verifies every draft, so tokens stay right under each of these bugs: what moves is
acceptance, which at temperature 0 is exact data per request (the acceptance_counts check) and is
judged two-sided against a record made here from clean vLLM. The cells run in batch mode, the
cheapest that judges acceptance: their subject is not timing."""

import pytest

import vllm_plants
from paths import CPU_CONFIG
from planted_lab import Lab
from specgate.engines.pool import EnginePool
from specgate.matrix import config

pytestmark = pytest.mark.engine
K = 3
CELLS = {"eagle3": "fixture-e3-eagle3", "eagle": "fixture-e1-eagle", "medusa": "fixture-heads-medusa",
         "mtp": "fixture-mimo-mtp"}

PLANTS = [  # (planted bug, the method whose path it is in)
    (vllm_plants.eagle3_aux_state_from_the_wrong_layer, "eagle3"),
    (vllm_plants.hidden_states_one_position_off, "eagle"),
    (vllm_plants.post_norm_instead_of_pre_norm, "mtp"),
    (vllm_plants.stale_next_token, "eagle3"),
    (vllm_plants.medusa_heads_in_the_wrong_order, "medusa"),
    (vllm_plants.mtp_layer_given_the_embedding_as_previous_hidden, "mtp"),
]


@pytest.fixture(scope="module")
def labs():
    matrix = config.load(CPU_CONFIG, {"num_prompts": 8, "max_new_tokens": 32, "rounds": 1, "paired_control": False,
                                      "modes": ["batch"]})
    found = {c.id: c for c in matrix.conditions()}
    pool = EnginePool()
    made: dict[str, Lab] = {}

    def lab(method: str) -> Lab:
        if method not in made:
            made[method] = Lab(pool, found[f"{CELLS[method]}-k{K}-batch"], modes=("batch",))
        return made[method]

    try:
        yield lab
    finally:
        pool.close()


@pytest.mark.parametrize("method", list(CELLS))
def test_clean_vllm_passes_every_check_for_each_head(labs, method):
    lab = labs(method)
    v = lab.verdict(lab.batch)
    assert v.status == "pass", v.reason


@pytest.mark.parametrize("plant, method", PLANTS, ids=[p.__name__ for p, _ in PLANTS])
def test_a_bug_in_a_head_s_path_is_caught_with_every_token_right(labs, plant, method):
    lab = labs(method)
    with plant():
        v = lab.verdict(lab.batch)
    assert v.status == "fail", f"{plant.__name__} went unnoticed: {v.reason}"
    assert "emit other tokens" not in v.reason, "the target verifies: tokens must stay right"
    assert "acceptance_counts" in [c.metric for c in v.failures], v.reason
    print(f"{plant.__name__}: {v.reason}")  # the figures for docs and notes
