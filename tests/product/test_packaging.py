"""specgate as a user gets it: a wheel built from this tree, installed non-editable in a fresh
virtual environment, runs `specgate report --reference origin-h100` (data files in the wheel) and the shipped
benchmark suite (`pytest --pyargs specgate.suites`) against a pairings file outside the repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paths import FIXTURE_MODELS, ROOT, SRC
from results_docs import sweep_doc

pytestmark = pytest.mark.engine

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
    """A fresh virtual environment with the wheel installed in it, non-editable. Its dependencies
    (torch and vLLM: gigabytes, and no network here) are this environment's, made importable after
    its own site-packages by a .pth line, so the wheel's copy of specgate is the one imported."""
    import site
    import sysconfig

    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    shutil.copytree(SRC, tree / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(tree)])
    wheel = next((tmp / "dist").glob("specgate-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    own = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    Path(own, "dependencies.pth").write_text("\n".join(site.getsitepackages() or [sysconfig.get_path("purelib")]))
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", str(wheel)])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = run([python, "-c", "import specgate; print(specgate.__file__)"], env=env, cwd=tmp).stdout
    assert where.strip().startswith(own), where  # the wheel's copy, not this checkout's
    return python, env, tmp


def run(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_the_installed_wheel_reports_with_the_origin_reference(installed):
    python, env, tmp = installed
    results = tmp / "results.json"
    results.write_text(json.dumps(sweep_doc()))
    run([python, "-m", "specgate.cli", "report", str(results), "--out", str(tmp / "report"),
         "--reference", "origin-h100"], env=env, cwd=tmp)
    assert (tmp / "report" / "summary.md").is_file() and list((tmp / "report").glob("*.png"))


def test_the_shipped_benchmark_suite_runs_against_a_pairings_file_elsewhere(installed):
    python, env, tmp = installed
    project = tmp / "elsewhere"
    project.mkdir()
    (project / "pairings.toml").write_text(PAIRINGS.format(models=FIXTURE_MODELS))
    suite = [python, "-m", "pytest", "--pyargs", "specgate.suites.test_benchmark", "-p", "no:cacheprovider", "-q",
             "--specgate-config", "pairings.toml", "--specgate-baselines", "baselines", "--specgate-no-reports"]
    run(suite + ["--specgate-update-baselines"], env=env, cwd=project)
    judged = run(suite + ["--specgate-strict"], env=env, cwd=project).stdout
    assert "2 passed" in judged and "acceptance and tokens judged for 2 of 2 conditions" in judged, judged[-2000:]
    assert (project / "baselines" / "portable.json").is_file()


def test_the_shipped_distribution_suite_runs_from_the_installed_wheel(installed):
    python, env, tmp = installed
    # One case of vLLM's rejection sampler (the whole suite:
    # tests/lossless/test_distribution_sampling.py).
    out = run([python, "-m", "pytest", "--pyargs", "specgate.suites.test_distribution", "-p", "no:cacheprovider",
               "-q", "-k", "vllm and disjoint"], env=env, cwd=tmp).stdout
    assert "1 passed" in out, out[-2000:]


REQUIREMENTS_MET = """
import importlib.metadata as md
from packaging.requirements import Requirement
unmet = []
for line in md.requires("specgate"):
    r = Requirement(line)
    if r.marker is not None and not r.marker.evaluate({"extra": ""}):
        continue  # an extra's requirement
    try:
        found = md.version(r.name)
    except md.PackageNotFoundError:
        found = None
    if found is None or not r.specifier.contains(found, prereleases=True):
        unmet.append(f"{r} (found {found})")
print(unmet)
raise SystemExit(bool(unmet))
"""


def test_the_wheels_runtime_requirements_are_met_in_the_fresh_environment(installed):
    python, env, tmp = installed
    out = run([python, "-c", REQUIREMENTS_MET], env=env, cwd=tmp).stdout
    assert out.strip() == "[]", out
