"""Baseline files: matching rules, clear errors for bad files, and atomic writes."""

import json
import signal
import subprocess
import sys
import time

import pytest

from paths import FIXTURE_MODELS
from specgate.records import baselines, document
from specgate.records.baselines import BaselineError, BaselineFile

ENV = {"hardware": "cpu-test-2c", "vllm": "0.32.0", "torch": "2.13.0", "date": "2026-11-28", "commit": "abc"}


@pytest.fixture(scope="module")
def condition(cpu_conditions):
    return cpu_conditions["fixture-aligned-draft_model-k2"]


RUN = {"condition_id": "x", "mode": "sequential", "k": 2, "wall_s": 1.0, "counters": {
    "drafts": 1, "draft_tokens": 2, "accepted": 1, "accepted_per_pos": [1, 0]}, "requests": [
    {"prompt_tokens": 3, "output_tokens": 4, "latency_s": 0.5, "output_token_ids": [1, 2, 3, 4],
     "spec": {"drafts": 1, "draft_tokens": 2, "accepted": 1, "accepted_per_pos": [1, 0]}}]}


def make_record(condition, **env):
    return baselines.portable_record(baselines.condition_facts(condition), {**ENV, **env}, {"acceptance_rate": 0.5}, RUN)


def saved(tmp_path, records, kind=baselines.PORTABLE, hardware=None):
    path = tmp_path / ("portable.json" if kind == baselines.PORTABLE else f"{hardware}.json")
    BaselineFile(path, kind, hardware, {}).update(records)
    return path


def test_portable_record_matches_by_model_content_on_any_machine_and_version(tmp_path, condition):
    cond = condition
    path = saved(tmp_path, {cond.id: make_record(cond, hardware="cpu-other-4c", vllm="0.31.0")})
    rec, why = BaselineFile.load(path, baselines.PORTABLE).find(cond.id, baselines.condition_facts(cond))
    assert rec is not None, why
    assert rec["conditions"]["draft"].startswith("sha256:") and "draft_path" not in rec["conditions"]
    assert rec["recorded"]["vllm"] == "0.31.0"  # kept for the verdict's version line, never matched
    assert rec["requests"][0]["tokens"]  # temperature 0: the digest of the emitted tokens
    other = {**baselines.condition_facts(cond), "rounds": 7}
    assert BaselineFile.load(path, baselines.PORTABLE).find(cond.id, other)[0] is not None  # timing-only fact
    other = {**baselines.condition_facts(cond), "num_prompts": 8}
    rec, why = BaselineFile.load(path, baselines.PORTABLE).find(cond.id, other)
    assert rec is None and "num_prompts=32 there, 8 here" in why
    rec, why = BaselineFile.load(path, baselines.PORTABLE).find("unknown-id", other)
    assert rec is None and "no portable baseline for unknown-id" in why


def test_a_changed_model_file_changes_the_model_id(tmp_path):
    import shutil

    from specgate.records.fingerprint import model_id

    copy = tmp_path / "draft"
    shutil.copytree(FIXTURE_MODELS / "aligned-draft", copy)
    assert model_id(str(copy)) == model_id(str(FIXTURE_MODELS / "aligned-draft"))
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert model_id(str(copy)) != model_id(str(FIXTURE_MODELS / "aligned-draft"))


def test_timing_records_are_per_hardware(tmp_path):
    path = saved(tmp_path, {"a": {"conditions": {}, "recorded": {}, "metrics": {}}}, baselines.TIMING, "cpu-test-2c")
    assert BaselineFile.load(path, baselines.TIMING, "cpu-test-2c").records
    with pytest.raises(BaselineError, match="timing records for hardware 'cpu-test-2c', not 'cpu-x'"):
        BaselineFile.load(path, baselines.TIMING, "cpu-x")


def test_absent_file_has_no_records(tmp_path):
    assert BaselineFile.load(tmp_path / "portable.json", baselines.PORTABLE).records == {}


@pytest.mark.parametrize("content, message", [
    ('{"schema": 2, "kind": "portable", "records": {', "is not valid JSON"),
    ('[1, 2]', "must hold a JSON object"),
    ('{"schema": 99, "kind": "portable", "records": {}}', "newer specgate (schema 99"),
    ('{"kind": "portable", "records": {}}', "no integer 'schema'"),
    ('{"schema": 1, "hardware": "cpu-test-2c", "records": {}}', "specgate baseline migrate"),
    ('{"schema": 2, "kind": "timing", "hardware": "x", "records": {}}', "holds 'timing' records, not 'portable'"),
    ('{"schema": 2, "kind": "portable", "records": {"a": {"metrics": {}}}}', "record 'a' is incomplete"),
])
def test_bad_baseline_files_fail_with_one_clear_message(tmp_path, content, message):
    path = tmp_path / "portable.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BaselineFile.load(path, baselines.PORTABLE)


def test_dumps_is_stable_sorted_and_compact():
    doc = {"b": [1, 2, 3], "a": {"z": 1, "y": [{"q": 1}] * 40}}
    text = document.dumps(doc)
    assert text == document.dumps(json.loads(text))
    assert text.index('"a"') < text.index('"b"') and '"b": [1, 2, 3]' in text
    assert json.loads(text) == doc


WRITER = """
import sys
from pathlib import Path
from specgate.records.document import write_atomic
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
