"""matrix.cost: the GPUs a pairing needs, its target's size, and the stated model of a condition's
GPU time."""

import json
import math

import pytest

from paths import FIXTURE_MODELS
from specgate.matrix import config, cost
from specgate.matrix.errors import ConfigError

LLAMA_70B = {"hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672, "vocab_size": 128256,
             "num_attention_heads": 64, "num_key_value_heads": 8, "tie_word_embeddings": False}


def matrix(tmp_path, body: str, target: str = "meta-llama/Llama-3.1-70B-Instruct"):
    path = tmp_path / "p.toml"
    path.write_text(f"[defaults]\ntarget = '{target}'\nmax_new_tokens = 100\nnum_prompts = 10\n" + body)
    return config.load(path)


def conditions(m) -> dict:
    return {c.id: c for c in m.conditions()}


def test_gpus_are_tensor_times_pipeline_parallel_and_a_draft_adds_none(tmp_path):
    m = matrix(tmp_path, """
[[pairing]]
name = "one"
method = "ngram"
k = 1
[[pairing]]
name = "tp4"
method = "draft_model"
draft = "meta-llama/Llama-3.2-1B"
k = 1
engine = { tensor_parallel_size = 4 }
speculative = { draft_tensor_parallel_size = 1 }
[[pairing]]
name = "tp2pp2"
method = "ngram"
k = 1
engine = { tensor_parallel_size = 2, pipeline_parallel_size = 2 }
""")
    assert [cost.gpus(p) for p in m.pairings] == [1, 4, 4]
    bad = matrix(tmp_path, "[[pairing]]\nname='x'\nmethod='ngram'\nk=1\nengine={tensor_parallel_size='4'}\n")
    with pytest.raises(ConfigError, match="'engine.tensor_parallel_size': must be an integer >= 1, got '4'"):
        cost.gpus(bad.pairings[0])


def test_parameters_of_a_local_folder_come_from_its_config_json(tmp_path):
    cfg = json.loads((FIXTURE_MODELS / "target" / "config.json").read_text())
    h, i, v, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    assert cost.parameters(cfg) == layers * (4 * h * h + 3 * h * i) + v * h  # tied embeddings, no GQA
    size = cost.target_size(matrix(tmp_path, "[[pairing]]\nname='x'\nmethod='ngram'\nk=1\n",
                                   target=str(FIXTURE_MODELS / "target")).pairings[0])
    assert (size.parameters, size.source) == (cost.parameters(cfg), "config.json")
    # Grouped KV heads and untied embeddings: Llama 3.1 70B counts its published 70.6e9.
    assert cost.parameters(LLAMA_70B) == pytest.approx(70.55e9, rel=1e-3)
    assert cost.parameters({"hidden_size": 8}) is None


@pytest.mark.parametrize("target,target_name,parameters", [
    ("meta-llama/Llama-3.1-70B-Instruct", "", 70e9),
    ("Qwen/Qwen3-0.6B", "", 0.6e9),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "", 135e6),
    ("acme/house-model", "house-13b", 13e9),  # the name the pairings file gives it
    ("mistralai/Mixtral-8x7B-v0.1", "mixtral", None),  # a mixture of experts is not 7e9 dense parameters
    ("acme/house-model", "", None),
])
def test_a_hub_target_is_sized_by_its_name_or_unknown(tmp_path, target, target_name, parameters):
    name = f"target_name = '{target_name}'\n" if target_name else ""
    size = cost.target_size(matrix(tmp_path, f"[[pairing]]\nname='x'\nmethod='ngram'\nk=1\n{name}",
                                   target=target).pairings[0])
    assert size.parameters == (None if parameters is None else pytest.approx(parameters))
    if parameters is None:
        assert "no size such as '8B' in its name" in size.source and "size unknown" in str(size)


def test_the_model_reads_every_weight_once_per_decode_step(tmp_path):
    m = matrix(tmp_path, """
[[pairing]]
name = "x"
method = "ngram"
k = [1, 2]
rounds = 3
modes = ["sequential", "batch"]
engine = { tensor_parallel_size = 4 }
[[pairing]]
name = "paired"
method = "ngram"
k = 1
paired_control = true
[[pairing]]
name = "served"
method = "ngram"
k = 1
modes = ["serving"]
concurrency = [1, 4]
""")
    size = cost.Size(70e9, "name")
    step_tp4 = 2 * 70e9 / (4 * cost.BANDWIDTH * cost.EFFICIENCY)  # bfloat16-sized "auto"
    step = 4 * step_tp4
    c = conditions(m)
    assert cost.seconds(c["x-ngram-k1"], size) == pytest.approx(3 * 10 * 100 * step_tp4)
    assert cost.seconds(c["x-ngram-k1-batch"], size) == pytest.approx(3 * 100 * step_tp4)
    assert cost.seconds(c["paired-ngram-k1"], size) == pytest.approx(2 * 10 * 100 * step)  # the control beside
    assert cost.seconds(c["served-ngram-k1-serving-c4"], size) == pytest.approx(math.ceil(10 / 4) * 100 * step)
    assert cost.seconds(c["x-ngram-k1"], cost.Size(None, "?")) is None
    # Twice the bandwidth, half the time.
    assert cost.seconds(c["x-ngram-k2"], size, 2 * cost.BANDWIDTH) == pytest.approx(3 * 10 * 100 * step_tp4 / 2)


def test_bytes_per_parameter_follow_dtype_and_quantization(tmp_path):
    m = matrix(tmp_path, """
[[pairing]]
name = "f32"
method = "ngram"
k = 1
dtype = "float32"
[[pairing]]
name = "bnb"
method = "ngram"
k = 1
engine = { quantization = "bitsandbytes" }
""")
    assert [cost.bytes_per_parameter(p) for p in m.pairings] == [4.0, 0.5]


def test_conditions_sharing_an_engine_count_one_build(tmp_path):
    m = matrix(tmp_path, """
[[pairing]]
name = "x"
method = "ngram"
k = [1, 2]
modes = ["sequential", "batch", "serving"]
concurrency = [1, 4]
""")
    engines = {cost.engine(c) for c in m.conditions()}
    # Sequential and batch share an engine per k and for the control; serving needs a server per k (both
    # concurrencies on one).
    assert len(m.conditions()) == 4 + 2 * 4 and len(engines) == 3 * 2
