"""`specgate plan`: the table, the JSON document, and the plan file --specgate-plan reads."""

import json

from paths import FIXTURE_MODELS
from specgate import cli

PAIRINGS = f"""
[defaults]
num_prompts = 16
max_new_tokens = 64
[[pairing]]
name = "fixture-ngram"
target = "{FIXTURE_MODELS}/target"
method = "ngram"
k = [1, 2]
[[pairing]]
name = "llama70b-ngram"
target = "meta-llama/Llama-3.1-70B-Instruct"
method = "ngram"
k = [1, 2, 3]
engine = {{ tensor_parallel_size = 4 }}
[[pairing]]
name = "house"
target = "acme/house-model"
method = "ngram"
k = 1
"""
RUNNERS = '{"1": ["self-hosted", "gpu"], "4": ["self-hosted", "gpu-4x"]}'


def test_plan_prints_each_shard_its_runner_and_where_each_estimate_came_from(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text(PAIRINGS)
    assert cli.main(["plan", str(path), "--shards", "3", "--runners", RUNNERS, "--out", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}: 3 pairings, 9 conditions in 3 shards;")
    shard_rows = [line.split() for line in lines if line.startswith(("0/3", "1/3", "2/3"))]
    assert [(r[0], r[1:3]) for r in shard_rows] == [("0/3", ["self-hosted", "gpu"]), ("1/3", ["self-hosted", "gpu"]),
                                                    ("2/3", ["self-hosted", "gpu-4x"])]
    assert shard_rows[2][-1] == "llama70b-ngram" and "model" in shard_rows[2]
    assert "70B parameters (name 'Llama-3.1-70B-Instruct')" in out and "M parameters (config.json)" in out
    assert "note: pairing 'house': size unknown" in out and "+ 2 unknown" in out
    assert f"plan written to {tmp_path / 'plan.json'}" in out
    written = json.loads((tmp_path / "plan.json").read_text())
    assert cli.main(["plan", str(path), "--shards", "3", "--runners", RUNNERS, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == written  # the same inputs, the same plan
    assert written["pairings"]["path"] == str(path) and len(written["pairings"]["sha256"]) == 64
    assert [(s["index"], s["runs_on"][-1], s["pairings"]) for s in written["shards"]] == [
        (0, "gpu", ["fixture-ngram"]), (1, "gpu", ["house"]), (2, "gpu-4x", ["llama70b-ngram"])]


def test_plan_defaults_to_one_shard_on_the_single_default_label(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text(PAIRINGS)
    assert cli.main(["plan", str(path), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["matrix"] == {"include": [{"shard": "0/1", "runs_on": ["self-hosted", "linux", "gpu"]}]}


def test_the_plans_shown_in_docs_gpu_md_are_what_the_command_prints(monkeypatch, capsys):
    """docs/gpu.md prints `specgate plan configs/gpu.toml ...`: a change to the model or the file
    that moves an estimate must update it."""
    import re
    import shlex

    from paths import ROOT

    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```\n\$ specgate (plan .*?)\n(.*?)\n```", (ROOT / "docs" / "gpu.md").read_text(), re.S)
    assert len(blocks) == 2
    for command, shown in blocks:
        assert cli.main(shlex.split(command)) == 0
        assert capsys.readouterr().out.rstrip("\n") == shown, command
