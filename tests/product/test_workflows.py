"""The GitHub workflows: valid against GitHub's workflow schema, and every command their steps
run exists with the flags they pass, so a typo cannot hide until the first GPU run."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from paths import ROOT, TESTS
from specgate.cli.app import build_parser

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _schema_check(*paths):
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_workflows_match_githubs_schema():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "gpu-benchmarks.yml"}
    proc = _schema_check(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github" / "workflows" / "gpu-benchmarks.yml").read_text()
                      .replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1))
    assert _schema_check(broken).returncode != 0


def _commands(workflow: Path) -> list[list[str]]:
    """Every command line of every `run:` step, continuation lines joined, ${{ }} and $VARS
    replaced by a placeholder value."""
    doc = yaml.safe_load(workflow.read_text())
    lines = []
    for job in doc["jobs"].values():
        for step in job.get("steps", []):
            script = re.sub(r"\\\n\s*", " ", step.get("run", ""))
            for line in script.splitlines():
                line = re.sub(r"\$\{\{[^}]*\}\}", "X", line)
                line = re.sub(r'"\$\{[a-z_]+\[@\]\}"|\$PYTEST_ARGS', "", line)
                line = re.sub(r"\$\{?[A-Z_]+\}?", "1", line)  # a value every flag parses (--shards N)
                lines.append(shlex.split(line, comments=True))
    return [words for words in lines if words]


def _specgate_calls(workflow):
    return [w[w.index(next(x for x in w if x.endswith("specgate"))) + 1:] for w in _commands(workflow)
            if any(x.endswith("specgate") and not x.startswith("-") for x in w)]


def test_every_specgate_command_in_the_gpu_workflow_parses():
    calls = _specgate_calls(ROOT / ".github" / "workflows" / "gpu-benchmarks.yml")
    assert {c[0] for c in calls} == {"plan", "validate", "merge", "baseline"}
    for argv in calls:
        build_parser().parse_args(argv)  # argparse exits 2 on an unknown command or flag


def test_every_pytest_flag_in_the_workflows_is_registered():
    help_text = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120).stdout
    used = set()
    for workflow in WORKFLOWS:
        for words in _commands(workflow):
            if "pytest" in words:
                used |= {w.split("=")[0] for w in words if w.startswith("--")}
    assert {"--specgate-config", "--specgate-shard", "--specgate-reports", "--benchmark-json"} <= used
    unknown = {flag for flag in used if not re.search(rf"(^|\s|,){re.escape(flag)}[\s=,]", help_text, re.M)}
    assert not unknown, f"flags not known to pytest with the specgate plugin: {sorted(unknown)}"


def test_make_targets_the_workflows_call_exist():
    targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.M))
    for workflow in WORKFLOWS:
        for words in _commands(workflow):
            if "make" in words:
                called = words[words.index("make") + 1]
                assert called in targets, f"{workflow.name}: make {called}"


@pytest.mark.parametrize("subcommand", ["plan", "validate", "merge", "baseline", "report"])
def test_workflow_subcommands_are_exercised_by_the_cpu_tests(subcommand):
    tests = "".join(p.read_text() for p in TESTS.rglob("test_*.py") if p.name != "test_workflows.py")
    assert re.search(rf'\[\s*"{subcommand}"', tests), f"no CPU test runs `specgate {subcommand}`"
