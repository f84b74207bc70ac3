"""records.plan: estimates from timing records (scaled to the workload configured now) or the model,
pairings on the smallest runner label that fits, shards packed longest first, and the plan file
that --specgate-plan reads back."""

import json

import pytest

from specgate.matrix import config, cost
from specgate.records import plan
from specgate.records.baselines import TIMING, BaselineFile

ONE = [plan.Runner(1, ("gpu",)), plan.Runner(4, ("gpu-4x",))]


def pairing(name: str, target: str, k="1", extra: str = "") -> str:
    return f"[[pairing]]\nname = '{name}'\ntarget = '{target}'\nmethod = 'ngram'\nk = {k}\n{extra}"


def load(tmp_path, *pairings: str, defaults: str = "max_new_tokens = 100\nnum_prompts = 10\n"):
    path = tmp_path / "p.toml"
    path.write_text("[defaults]\n" + defaults + "\n".join(pairings))
    return config.load(path)


def timing(tmp_path, records: dict) -> BaselineFile:
    file = BaselineFile(tmp_path / "timing" / "gpu-x1.json", TIMING, "gpu-x1", {})
    file.update(records)
    return file


def record(wall_s, num_prompts=32, max_new_tokens=50, rounds=5, control=None):
    return {"conditions": {"num_prompts": num_prompts, "max_new_tokens": max_new_tokens, "rounds": rounds},
            "recorded": {"date": "2026-11-29T11:13:26+00:00"}, "metrics": {}, "mode": "sequential",
            "wall_s": wall_s, "latency_s": [wall_s], "control": control}


def test_a_record_is_scaled_by_the_prompts_tokens_and_rounds_configured_now(tmp_path):
    m = load(tmp_path, pairing("x", "org/Model-8B", extra="rounds = 3\n"), pairing("p", "org/Model-8B", extra="rounds = 2\npaired_control = true\n"))
    c = {c.id: c for c in m.conditions()}
    # Recorded: 32 prompts x 50 tokens, one round (the median of 5) took 4 s. Now: 10 x 100, 3 rounds.
    got = plan.from_record(c["x-ngram-k1"], record(4.0), "gpu-x1")
    assert got.seconds == pytest.approx(3 * 4.0 * (10 / 32) * (100 / 50))
    assert got.source == "record gpu-x1 2026-11-29"
    # Paired: the control timed beside each request adds its latencies; a control run of its own does not.
    beside = {"wall_s": None, "latency_s": [1.0, 2.0], "output_tokens": [50, 50]}
    assert plan.from_record(c["p-ngram-k1"], record(4.0, control=beside), "gpu-x1").seconds == \
        pytest.approx(2 * 7.0 * (10 / 32) * 2)
    assert plan.from_record(c["p-ngram-k1"], record(4.0, control={**beside, "wall_s": 3.0}), "gpu-x1").seconds == \
        pytest.approx(2 * 4.0 * (10 / 32) * 2)


def test_a_record_wins_over_the_model_and_the_model_fills_the_rest(tmp_path):
    m = load(tmp_path, pairing("x", "org/Model-8B", k="[1, 2]"))
    file = timing(tmp_path, {"x-ngram-k1": record(4.0)})
    made = plan.make(m, 1, ONE, [file])
    assert made["shards"][0]["sources"] == ["model (2)", "record gpu-x1 2026-11-29 (1)"]
    size = cost.target_size(m.pairings[0])
    modelled = sum(cost.seconds(c, size) for c in m.conditions() if c.id != "x-ngram-k1")
    assert made["shards"][0]["seconds"] == pytest.approx(
        4.0 * (10 / 32) * 2 + modelled + 3 * cost.ENGINE_BUILD_S, abs=0.1)


def test_an_unknown_size_is_said_with_how_to_fix_it(tmp_path):
    made = plan.make(load(tmp_path, pairing("mystery", "acme/house-model"), pairing("known", "org/Model-8B")), 1, ONE)
    assert made["shards"][0]["unknown"] == 2 and made["estimates"][0]["unknown"] == 2
    note, = made["notes"]
    assert "pairing 'mystery': size unknown" in note and "2 conditions not estimated" in note
    assert "--hardware TAG" in note and "a hub id with its size in the name" in note


def test_each_pairing_goes_to_the_smallest_label_with_its_gpus(tmp_path):
    m = load(tmp_path, pairing("small", "org/Model-8B"),
             pairing("two", "org/Model-32B", extra="engine = { tensor_parallel_size = 2 }\n"),
             pairing("big", "org/Model-70B", extra="engine = { tensor_parallel_size = 4 }\n"))
    made = plan.make(m, 2, ONE)
    assert [(s["runs_on"], s["gpus"], s["pairings"]) for s in made["shards"]] == [
        (["gpu"], 1, ["small"]), (["gpu-4x"], 4, ["two", "big"])]
    assert made["matrix"] == {"include": [{"shard": "0/2", "runs_on": ["gpu"]}, {"shard": "1/2", "runs_on": ["gpu-4x"]}]}
    with pytest.raises(plan.PlanError, match=r"^pairing 'big' needs 4 GPUs .*the runner labels have 1 GPU: \[\"gpu\"\], "
                                             r"2 GPUs: \[\"g2\"\]: add a label with 4 or more GPUs to --runners$"):
        plan.make(m, 2, [plan.Runner(1, ("gpu",)), plan.Runner(2, ("g2",))])
    # One label for every size: today's single runs-on.
    made = plan.make(m, 1, [plan.Runner(None, plan.DEFAULT_RUNS_ON)])
    assert [s["pairings"] for s in made["shards"]] == [["small", "two", "big"]]


def test_shards_are_raised_to_one_per_label_in_use_and_the_plan_says_so(tmp_path):
    m = load(tmp_path, pairing("small", "org/Model-8B"),
             pairing("big", "org/Model-70B", extra="engine = { tensor_parallel_size = 4 }\n"))
    made = plan.make(m, 1, ONE)
    assert made["shard_count"] == 2 and [s["runs_on"] for s in made["shards"]] == [["gpu"], ["gpu-4x"]]
    assert "--shards 1 raised to 2: one shard for each runner label in use" in made["notes"]
    assert plan.make(m, 5, ONE)["shard_count"] == 2  # a shard never runs nothing


def test_shards_are_packed_longest_first_balanced_and_deterministic(tmp_path):
    # Rounds 7, 5, 4, 3 (and an engine build each) into 2 shards: LPT gives {7, 3} and {5, 4}: 10 and 9
    # rounds, where the round-robin of --specgate-shard gives {7, 4} and {5, 3}: 11 and 8.
    names = {"a": 7, "b": 5, "c": 4, "d": 3}
    m = load(tmp_path, *[pairing(n, "org/Model-8B", extra=f"rounds = {r}\n") for n, r in names.items()],
             defaults="max_new_tokens = 100\nnum_prompts = 100\nmodes = ['sequential']\n")
    made = plan.make(m, 2, ONE)
    assert [s["pairings"] for s in made["shards"]] == [["a", "d"], ["b", "c"]]
    loads = [s["seconds"] for s in made["shards"]]
    assert max(loads) / min(loads) < 1.1
    assert json.dumps(plan.make(m, 2, ONE)) == json.dumps(made)
    # More time on the 4-GPU label: the spare shard goes there.
    m = load(tmp_path, pairing("small", "org/Model-8B"),
             *[pairing(f"big{i}", "org/Model-70B", extra="engine = { tensor_parallel_size = 4 }\n") for i in range(2)])
    assert [s["runs_on"] for s in plan.make(m, 3, ONE)["shards"]] == [["gpu"], ["gpu-4x"], ["gpu-4x"]]


@pytest.mark.parametrize("text,said", [
    ('{"1": ["gpu"], "4": ["gpu-4x"]}', None),
    ('["self-hosted", "gpu"]', None),
    ("{bad", "--runners '{bad': not JSON"),
    ('{"one": ["gpu"]}', "--runners: key 'one' is not a GPU count"),
    ('{"0": ["gpu"]}', "--runners: key '0' is not a GPU count"),
    ('{"1": "gpu"}', "runs-on labels must be a non-empty list of strings"),
    ("7", "expected a JSON object of GPU count -> runs-on labels"),
])
def test_runner_labels_are_read_strictly(text, said):
    if said is None:
        assert plan.parse_runners(text)
    else:
        with pytest.raises(plan.PlanError, match=None) as exc:
            plan.parse_runners(text)
        assert said in str(exc.value)


def test_a_plan_is_used_only_for_its_pairings_file_and_shard_count(tmp_path):
    m = load(tmp_path, pairing("a", "org/Model-8B"), pairing("b", "org/Model-8B", extra="rounds = 9\n"))
    path = tmp_path / "plan.json"
    plan.write(path, plan.make(m, 2, ONE))
    assert plan.shard_pairings(path, m.source, (0, 2)) == ("b",)  # the longer one first
    with pytest.raises(plan.PlanError, match=r"has 2 shards, this run is --specgate-shard 0/3"):
        plan.shard_pairings(path, m.source, (0, 3))
    m.source.write_text(m.source.read_text() + "\n# edited\n")
    with pytest.raises(plan.PlanError, match=r"made for .*p.toml \(sha256 \w{12}\), not for this run's .*re-run "
                                             r"`specgate plan .*p.toml --shards 2 --out .*plan.json`$"):
        plan.shard_pairings(path, m.source, (0, 2))
    path.write_text("{}")
    with pytest.raises(plan.PlanError, match="not a specgate plan"):
        plan.shard_pairings(path, m.source, (0, 2))
