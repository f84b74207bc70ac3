"""specgate as a user gets it: a wheel built from this tree, installed non-editable in a folder of
its own, runs `specgate report --reference origin-h100` (data files in the wheel) and the shipped
benchmark suite (`pytest --pyargs specgate.suites`) against a pairings file outside the repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from results_docs import sweep_doc

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]

PAIRINGS = """
[defaults]
target = "{models}/target"
target_name = "fixture"
num_prompts = 2
max_new_tokens = 8
dtype = "float32"
engine = {{ enforce_eager = true, max_model_len = 512, kv_cache_memory_bytes = 67108864 }}
# The subject is packaging, not timing: two runs minutes apart are not compared for speed.
tolerances = {{ latency = inf, control_latency = inf, blocked = inf }}

[[pairing]]
name = "outside"
method = "draft_model"
draft = "{models}/aligned-draft"
k = [2]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, installed with --no-deps into its own folder (its dependencies are this venv's)."""
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(tree)])
    wheel = next((tmp / "dist").glob("specgate-*.whl"))
    site = tmp / "site"
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)])
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = run([sys.executable, "-c", "import specgate; print(specgate.__file__)"], env=env, cwd=tmp).stdout
    assert where.strip().startswith(str(site)), where  # the wheel's copy, not this checkout's
    return env, tmp


def run(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_the_installed_wheel_reports_with_the_origin_reference(installed):
    env, tmp = installed
    results = tmp / "results.json"
    results.write_text(json.dumps(sweep_doc()))
    run([sys.executable, "-m", "specgate.cli", "report", str(results), "--out", str(tmp / "report"),
         "--reference", "origin-h100"], env=env, cwd=tmp)
    assert (tmp / "report" / "summary.md").is_file() and list((tmp / "report").glob("*.png"))


def test_the_shipped_benchmark_suite_runs_against_a_pairings_file_elsewhere(installed):
    env, tmp = installed
    project = tmp / "elsewhere"
    project.mkdir()
    (project / "pairings.toml").write_text(PAIRINGS.format(models=ROOT / "models" / "fixture"))
    suite = [sys.executable, "-m", "pytest", "--pyargs", "specgate.suites.test_benchmark", "-p", "no:cacheprovider", "-q",
             "--specgate-config", "pairings.toml", "--specgate-baselines", "baselines", "--specgate-no-reports"]
    run(suite + ["--specgate-update-baselines"], env=env, cwd=project)
    judged = run(suite + ["--specgate-strict"], env=env, cwd=project).stdout
    assert "2 passed" in judged and "acceptance and tokens judged for 2 of 2 conditions" in judged, judged[-2000:]
    assert (project / "baselines" / "portable.json").is_file()
