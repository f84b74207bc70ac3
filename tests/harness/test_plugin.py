"""The pytest plugin end to end: a small pairings file through benchmarks/, in a child pytest."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from paths import BENCHMARKS, FIXTURE_MODELS, ROOT
from small_matrix import defaults
from specgate import cli
from specgate.report.charts import CHART_NAMES

pytestmark = pytest.mark.engine
SMALL = defaults(3).replace("{", "{{").replace("}", "}}") + """
[[pairing]]
name = "tiny"
method = "draft_model"
draft = "{models}/aligned-draft"
k = [1, 2]
# Timing is not what these tests check (docs/baselines.md measures it; scripts/plant_vllm.py): 3
# requests of ~30 ms on a shared, loaded 2-core machine once moved +1203%, and their blocked share
# once rose 6 points (a 2 ms stall is 6% of such a request), so every timing check is off (inf).
tolerances = {{ min_acceptance_rate = {floor}, latency = inf, control_latency = inf, blocked = inf }}
"""


def said(proc) -> str:
    """The run's output with whitespace collapsed: the terminal summary wraps its lines at 100 columns."""
    return " ".join(proc.stdout.split())


def run_benchmarks(tmp_path, floor=0.0, *extra, env=None):
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL.format(models=FIXTURE_MODELS, floor=floor))
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCHMARKS), "-v", "-rs", "-p", "no:cacheprovider",
         "--specgate-config", str(cfg), "--specgate-results", str(results),
         "--specgate-baselines", str(tmp_path / "baselines"), "--specgate-reports", str(tmp_path / "reports"), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    return proc, results


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One recording run (baselines updated under hardware tag cpu-test-2c, a CI step summary beside
    it) that the next two tests read: a second would cost a child pytest and two engines."""
    tmp_path = tmp_path_factory.mktemp("recorded")
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("earlier step\n")
    proc, results = run_benchmarks(tmp_path, 0.0, "--specgate-update-baselines", "--specgate-hardware-tag", "cpu-test-2c",
                                   "--benchmark-json", str(tmp_path / "benchmark.json"),
                                   env={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp_path, proc, results


def test_benchmarks_run_controls_first_and_print_the_table(recorded):
    tmp_path, proc, results = recorded
    step_summary = tmp_path / "step_summary.md"
    order = [line.split("::")[1].split(" ")[0] for line in proc.stdout.splitlines() if "PASSED" in line]
    assert order == ["test_speculative[fixture-nospec]", "test_speculative[tiny-draft_model-k1]",
                     "test_speculative[tiny-draft_model-k2]"]
    assert "specgate verdicts" in proc.stdout
    # pytest-benchmark timed every specgate benchmark on the clock that leaves out what is timed beside
    # (tests/engines/test_beside.py), not on its default perf_counter.
    timers = {b["options"]["timer"] for b in json.loads((tmp_path / "benchmark.json").read_text())["benchmarks"]}
    assert timers == {"speculative_clock"}, timers  # pytest-benchmark writes its name (its default: perf_counter)
    # Its table keeps the columns that mean something for one timed round each (not 10 columns of one number).
    bench_header = next(line for line in proc.stdout.splitlines() if line.startswith("Name (time in "))
    assert bench_header.split()[4:] == ["Mean", "Rounds"], bench_header
    table = proc.stdout.split("specgate verdicts")[1].split("short test summary")[0]
    assert "tiny-draft_model-k2" in table and "speedup" in table
    rows = [line for line in table.splitlines()[1:] if line.strip()]
    rows = rows[:next(i for i, line in enumerate(rows) if line.startswith("specgate:"))]
    assert len(rows) == 5 and max(len(line) for line in rows) <= 100  # header, rule, three conditions
    doc = json.loads(results.read_text())["runs"]
    assert set(doc) == {"fixture-nospec", "tiny-draft_model-k1", "tiny-draft_model-k2"}
    assert doc["tiny-draft_model-k1"]["metrics"]["speedup"] > 0
    assert len(doc["tiny-draft_model-k2"]["run"]["requests"]) == 3
    assert "3 baseline records written" in said(proc)
    # The report folder: the charts of a sequential sweep (no serving charts; recording baselines,
    # no regression picture), the summary and the results, and the CI step summary.
    reports = tmp_path / "reports"
    charts = sorted(p.name for p in reports.glob("*.png"))
    assert charts == sorted(f"{name}.png" for name in CHART_NAMES if name != "regression"
                            and not name.startswith("serving_")
                            and name != "acceptance_vs_context")
    assert all((reports / c).stat().st_size > 10_000 for c in charts)
    summary = (reports / "summary.md").read_text()
    assert "| tiny-draft_model-k2 |" in summary and "### Best k" in summary and "prop ms/tok" in summary
    assert step_summary.read_text() == "earlier step\n" + summary
    assert f"written to {reports}" in said(proc)
    assert json.loads((reports / "results.json").read_text())["runs"].keys() == doc.keys()


def test_baselines_recorded_then_compared_here_and_on_other_hardware(recorded, tmp_path):
    shutil.copytree(recorded[0] / "baselines", tmp_path / "baselines")
    shutil.copy(recorded[2], tmp_path / "results.json")
    ids = {"fixture-nospec", "tiny-draft_model-k1", "tiny-draft_model-k2"}
    assert set(json.loads((tmp_path / "baselines" / "portable.json").read_text())["records"]) == ids
    assert set(json.loads((tmp_path / "baselines" / "timing" / "cpu-test-2c.json").read_text())["records"]) == ids
    # The same run recorded from its results file (`specgate baseline update`): the same records,
    # code path included (one writer for both).
    assert cli.main(["baseline", "update", str(tmp_path / "results.json"), "--baselines", str(tmp_path / "cli"),
                     "--hardware-tag", "cpu-test-2c"]) == 0
    for name in ("portable.json", "timing/cpu-test-2c.json"):
        by_pytest = json.loads((tmp_path / "baselines" / name).read_text())["records"]
        assert json.loads((tmp_path / "cli" / name).read_text())["records"] == by_pytest, name
    assert by_pytest["tiny-draft_model-k2"]["code_path"]["counts"]
    # On the recording hardware every check is judged (saved_runs: the judge of `specgate compare`
    # and of a strict rerun, run on the recorded run itself, so no engine starts again).
    from specgate.gate.saved_runs import judge_runs
    from specgate.records.from_results import files_from_folder

    doc = json.loads((tmp_path / "results.json").read_text())
    verdicts = judge_runs(doc, files_from_folder(tmp_path / "baselines", "cpu-test-2c"),
                          lambda entry: entry.get("tolerances", {}))
    assert {cid: v.status for cid, v in verdicts.items()} == dict.fromkeys(ids, "pass")
    checks = {c.metric for c in verdicts["tiny-draft_model-k2"].checks}
    assert {"acceptance_rate", "drafts_per_token", "tokens", "latency_vs_control"} <= checks
    # A rerun on another machine (temperature 0, fixed seeds): acceptance and tokens are identical
    # and still judged; timing is not, and one line says why.
    proc, results = run_benchmarks(tmp_path, 0.0, "--specgate-strict", "--specgate-hardware-tag", "nvidia-other-x1")
    assert proc.returncode == 0 and "3 passed" in proc.stdout, proc.stdout[-3000:]
    assert "acceptance and tokens judged for 3 of 3 conditions" in said(proc)
    assert "timing NOT judged for 3 of 3 conditions: no timing records for this hardware (nvidia-other-x1)" in said(proc)
    # Where the records came from, and how that differs from this run, in the terminal and summary.md.
    assert "records from vLLM " in said(proc) and ", cpu-test-2c, recorded " in said(proc)
    assert "3 conditions (other than this run: hardware cpu-test-2c -> nvidia-other-x1)" in said(proc)
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "Judged against records from vLLM" in summary and "hardware cpu-test-2c -> nvidia-other-x1" in summary
    checks = {c["metric"] for c in json.loads(results.read_text())["runs"]["tiny-draft_model-k2"]["verdict"]["checks"]}
    assert "tokens" in checks and "latency_vs_control" not in checks


FLOORED = """
[[pairing]]
name = "floored"
method = "draft_model"
draft = "{models}/aligned-draft"
k = [2]
tolerances = {{ min_acceptance_rate = 0.999, latency = inf, control_latency = inf, blocked = inf }}
"""


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory):
    """One strict run without baselines of tiny k1 (floor 0) and of a pairing whose acceptance floor
    (0.999) no draft reaches, that the next two tests read: one child pytest instead of two."""
    tmp_path = tmp_path_factory.mktemp("strict")
    cfg = tmp_path / "small.toml"
    cfg.write_text((SMALL + FLOORED).format(models=FIXTURE_MODELS, floor=0.0))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCHMARKS), "-v", "-p", "no:cacheprovider", "--specgate-config", str(cfg),
         "--specgate-strict", "--specgate-baselines", str(tmp_path / "baselines"), "--specgate-no-reports",
         "-k", "k1 or floored"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc


def test_a_strict_run_without_comparable_baselines_fails(strict_run):
    # Not judged (7) and a regression (the floor below): the regression's 1 outranks it.
    assert strict_run.returncode == 1, strict_run.stdout[-3000:]
    assert "tiny-draft_model-k1: no comparable baseline (--specgate-strict)" in said(strict_run)
    assert "NOT judged: tiny-draft_model-k1" in said(strict_run)
    # Not strict, the same run skips instead: test_a_pairing_that_cannot_run_exits_6_names_it_and_stays_in_the_results.


def test_acceptance_floor_fails_the_benchmark_with_a_reason(strict_run):
    assert "FAILED benchmarks/test_speculative.py::test_speculative[floored-draft_model-k2]" in strict_run.stdout
    assert "is below the pairing's floor 0.999" in said(strict_run)


def test_bad_config_is_a_usage_error_before_any_engine(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[0]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "-p", "no:cacheprovider",
                           "--specgate-config", str(cfg)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2  # pytest's status for errors during collection
    out = proc.stdout + proc.stderr
    assert "specgate: " in out and "field 'k'" in out
    assert "Traceback" not in out and "plugin.py" not in out  # the message alone, no stack


def test_a_broken_baseline_file_is_a_usage_error_before_any_engine(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL.format(models=FIXTURE_MODELS, floor=0.0))
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "portable.json").write_text('{"schema": 2, "kind": "portable", "records": {')
    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "-p", "no:cacheprovider",
                           "--specgate-config", str(cfg), "--specgate-baselines", str(tmp_path / "baselines")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "portable.json" in out, out[-3000:]
    assert "Traceback" not in out and "ready in" not in out  # one line, and no engine was built


def test_a_pairing_that_cannot_run_exits_6_names_it_and_stays_in_the_results(tmp_path):
    """Setup errors (6) are not regressions (1): CI can tell a broken setup from a finding. The
    pairing's conditions stay in the results as errors (a merged report cannot pass without them),
    and a condition without a baseline in a run that is not strict is skipped and named."""
    cfg = tmp_path / "head.toml"
    cfg.write_text(SMALL.format(models=FIXTURE_MODELS, floor=0.0) + f"""
[[pairing]]
name = "headless"
method = "draft_model"
draft = "{FIXTURE_MODELS}/head-e3"
k = [1, 2]
""")
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "-p", "no:cacheprovider", "-rfs",
                           "--specgate-config", str(cfg), "--specgate-no-reports", "--specgate-results", str(results),
                           "--specgate-baselines", str(tmp_path / "baselines"), "-k", "headless or tiny-draft_model-k1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = said(proc)
    assert proc.returncode == 6, out[-3000:]
    assert "pairing 'headless': the draft head-e3 is a speculator head for method 'eagle3'" in out
    assert "pairing 'headless' cannot run: its preflight failed" in out  # the second test points at the first
    assert "Traceback" not in out and "building engine headless" not in out
    runs = json.loads(results.read_text())["runs"]
    assert {cid: (e["verdict"]["status"], e["verdict"].get("outcome")) for cid, e in runs.items()
            if cid.startswith("headless")} == {"headless-draft_model-k1": ("error", 6), "headless-draft_model-k2": ("error", 6)}
    # No baselines and not strict: skipped, not failed, and the run says which were not judged.
    assert runs["tiny-draft_model-k1"]["verdict"]["status"] == "no-baseline" and "1 skipped" in proc.stdout
    assert "NOT judged: tiny-draft_model-k1" in out


def test_serving_mode_runs_through_the_benchmark_and_streams(tmp_path):
    """Two `vllm serve` processes (control, speculation) at concurrency 2, recorded, then judged
    against what they recorded: the whole serving path, which a direct Server test does not cover.
    The judging is saved_runs' (what `specgate compare` and a strict rerun use), so the servers
    start once."""
    from specgate.gate.saved_runs import judge_runs
    from specgate.records.from_results import files_from_folder

    cfg = tmp_path / "serving.toml"
    cfg.write_text(defaults(4, 'modes = ["serving"]\nconcurrency = [2]\n') + f"""
[[pairing]]
name = "tiny"
method = "draft_model"
draft = "{FIXTURE_MODELS / "aligned-draft"}"
k = [2]
tolerances = {{ latency = inf, control_latency = inf, blocked = inf }}
""")
    results = tmp_path / "results.json"
    argv = [sys.executable, "-m", "pytest", str(BENCHMARKS), "-q", "-p", "no:cacheprovider",
            "--specgate-config", str(cfg), "--specgate-results", str(results), "--specgate-no-reports",
            "--specgate-baselines", str(tmp_path / "baselines"), "--specgate-update-baselines"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(results.read_text())
    runs = doc["runs"]
    assert set(runs) == {"fixture-nospec-serving-c2", "tiny-draft_model-k2-serving-c2"}
    spec = runs["tiny-draft_model-k2-serving-c2"]
    assert spec["verdict"]["status"] == "recorded" and spec["metrics"]["acceptance_rate"] > 0
    assert spec["metrics"]["ttft_p50_ms"] > 0 and spec["metrics"]["itl_p50_ms"] > 0
    verdicts = judge_runs(doc, files_from_folder(tmp_path / "baselines", doc["environment"]["hardware"]),
                          lambda entry: entry.get("tolerances", {}))
    judged = verdicts["tiny-draft_model-k2-serving-c2"]
    assert judged.status == "pass", judged.reason
    assert {c.metric for c in judged.checks} >= {"ttft", "itl", "acceptance_rate"}


def test_a_feature_vllm_refuses_is_unsupported_even_when_its_control_runs_on_demand(tmp_path):
    # n = 2 at temperature 0: vLLM refuses the request. With the control's own test deselected, the
    # speculative cell runs it first (ensure_control); the refusal is the cell's verdict, not an error.
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL.format(models=FIXTURE_MODELS, floor=0.0) + 'features = ["n2"]\n')
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(BENCHMARKS), "-v", "-p", "no:cacheprovider", "-k", "tiny and n2",
         "--specgate-config", str(cfg), "--specgate-results", str(results), "--specgate-no-reports",
         "--specgate-baselines", str(tmp_path / "baselines"), "--specgate-update-baselines"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
    refused = json.loads(results.read_text())["runs"]["tiny-draft_model-k2+n2"]["unsupported"]
    assert "n must be 1" in refused


def test_the_engine_stack_s_deprecation_notices_are_hidden_on_specgate_s_tests_only(tmp_path):
    """In a user's project (no specgate pyproject filters): a notice raised from vLLM's modules during
    a specgate test is not shown; the same notice in the user's own test, and the user's own notices,
    still are. No engine is built (the test takes spec_condition only)."""
    import tomllib

    from specgate.plugin import ENGINE_WARNINGS

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert tuple(project["tool"]["pytest"]["ini_options"]["filterwarnings"]) == ENGINE_WARNINGS
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL.format(models=FIXTURE_MODELS, floor=0.0))
    (tmp_path / "test_user.py").write_text(
        "import warnings\n\n"
        "def _vllm_notice():\n"
        "    warnings.warn_explicit('vllm-internal notice', DeprecationWarning, 'vllm/x.py', 1, module='vllm.x')\n\n"
        "def test_specgate_s(spec_condition):\n"
        "    _vllm_notice()\n\n"
        "def test_users_own():\n"
        "    _vllm_notice()\n"
        "    warnings.warn('users own notice', DeprecationWarning)\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "test_user.py", "-p", "no:cacheprovider",
                           "--specgate-config", str(cfg), "--specgate-no-reports", "-k", "nospec or users_own"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    summary = out.split("warnings summary")[1]
    assert "test_specgate_s" not in summary
    assert "test_users_own" in summary and "users own notice" in summary and "vllm-internal notice" in summary
