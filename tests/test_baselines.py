"""Baseline files: matching rules, clear errors for bad files, and atomic writes."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specgate import baselines, config
from specgate.baselines import BaselineError, BaselineFile

ROOT = Path(__file__).resolve().parents[1]
ENV = {"hardware": "cpu-test-2c", "vllm": "0.32.0", "torch": "2.13.0", "date": "2026-11-28", "commit": "abc"}


@pytest.fixture(scope="module")
def condition():
    return {c.id: c for c in config.load(ROOT / "configs" / "cpu.toml").conditions()}["fixture-aligned-draft_model-k2"]


def make_record(condition, **env):
    run = {"condition_id": condition.id, "mode": "sequential", "k": 2, "wall_s": 1.0, "counters": {
        "drafts": 1, "draft_tokens": 2, "accepted": 1, "accepted_per_pos": [1, 0]}, "requests": [
        {"prompt_tokens": 3, "output_tokens": 4, "latency_s": 0.5, "output_token_ids": [1, 2, 3, 4],
         "spec": {"drafts": 1, "draft_tokens": 2, "accepted": 1, "accepted_per_pos": [1, 0]}}]}
    return baselines.record(baselines.condition_facts(condition), {**ENV, **env}, {"acceptance_rate": 0.5}, run)


def saved(tmp_path, records, hardware="cpu-test-2c"):
    path = tmp_path / f"{hardware}.json"
    BaselineFile(path, hardware, {}).update(records)
    return path


def test_round_trip_and_match(tmp_path, condition):
    path = saved(tmp_path, {condition.id: make_record(condition)})
    loaded = BaselineFile.load(path, "cpu-test-2c")
    rec, why = loaded.find(condition.id, baselines.condition_facts(condition), ENV)
    assert why == "" and rec["metrics"] == {"acceptance_rate": 0.5}
    assert "output_token_ids" not in rec["run"]["requests"][0]  # kept out of baselines: bulk, not needed
    assert rec["conditions"]["draft"] == "local:aligned-draft"  # checkouts differ in absolute paths


def test_other_versions_or_conditions_are_no_baseline(tmp_path, condition):
    path = saved(tmp_path, {condition.id: make_record(condition, vllm="0.31.0")})
    loaded = BaselineFile.load(path, "cpu-test-2c")
    rec, why = loaded.find(condition.id, baselines.condition_facts(condition), ENV)
    assert rec is None and "recorded with vllm 0.31.0, this run uses 0.32.0" in why
    other = {**baselines.condition_facts(condition), "num_prompts": 8}
    saved(tmp_path, {condition.id: make_record(condition)})
    rec, why = BaselineFile.load(path, "cpu-test-2c").find(condition.id, other, ENV)
    assert rec is None and "num_prompts=32 there, 8 here" in why
    rec, why = BaselineFile.load(path, "cpu-test-2c").find("unknown-id", other, ENV)
    assert rec is None and "no baseline for unknown-id" in why


def test_absent_file_has_no_records(tmp_path):
    assert BaselineFile.load(tmp_path / "cpu-x.json", "cpu-x").records == {}


@pytest.mark.parametrize("content, message", [
    ('{"schema": 1, "hardware": "cpu-test-2c", "records": {', "is not valid JSON"),
    ("", "is not valid JSON"),
    ('{"schema": 99, "hardware": "cpu-test-2c", "records": {}}', "newer specgate (schema 99"),
    ('{"hardware": "cpu-test-2c", "records": {}}', "no integer 'schema'"),
    ('{"schema": 1, "hardware": "nvidia-h100-x1", "records": {}}', "holds records for hardware 'nvidia-h100-x1'"),
    ('{"schema": 1, "hardware": "cpu-test-2c", "records": {"a": {"metrics": {}}}}', "record 'a' is incomplete"),
    ("[]", "must hold a JSON object"),
])
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "cpu-test-2c.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message.replace("(", r"\(")):
        BaselineFile.load(path, "cpu-test-2c")


def test_dumps_is_stable_sorted_and_compact():
    doc = {"b": [1, 2, 3], "a": {"z": 1, "y": [{"q": 1}] * 40}}
    text = baselines.dumps(doc)
    assert text == baselines.dumps(json.loads(text))
    assert text.index('"a"') < text.index('"b"') and '"b": [1, 2, 3]' in text
    assert json.loads(text) == doc


WRITER = """
import sys
from pathlib import Path
from specgate.baselines import write_atomic
path, i = Path(sys.argv[1]), 0
while True:
    i += 1
    write_atomic(path, '{"version": %d, "pad": "%s"}' % (i, "x" * 30_000_000))
"""


def test_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """SIGKILL the writer at ten points mid-write: the file is always a whole old or new version."""
    path = tmp_path / "baseline.json"
    path.write_text('{"version": 0, "pad": ""}')
    seen = set()
    for attempt in range(10):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        time.sleep(0.15 + 0.07 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        doc = json.loads(path.read_text())  # raises if the file were torn
        seen.add(doc["version"])
    assert seen  # every read parsed; versions show whether kills landed before or after renames
    for leftover in tmp_path.glob(".baseline.json.*.tmp"):
        leftover.unlink()  # a killed writer can leave its temporary file; never the target


def test_written_files_are_world_readable_like_any_other(tmp_path):
    path = saved(tmp_path, {})
    assert path.stat().st_mode & 0o044 == 0o044  # not mkstemp's private 0600
