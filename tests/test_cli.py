"""The specgate command: validate and table, including their errors."""

import json
from pathlib import Path

from specgate import cli
from specgate.metrics import summarize
from results_docs import sweep_doc as _sweep_doc
from specgate.results import RequestRecord, RunResult, SpecCounters

ROOT = Path(__file__).resolve().parents[1]


def test_validate_lists_conditions(capsys):
    assert cli.main(["validate", str(ROOT / "configs" / "cpu.toml")]) == 0
    out = capsys.readouterr().out
    assert "4 pairings, 22 conditions" in out and "fixture-aligned-draft_model-k5" in out


def test_validate_bad_file_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=0\n")
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specgate: error:") and "field 'k'" in err and err.count("\n") == 1


def test_table_from_results_file(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters(4, 8, 6, (4, 2)))
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema": 1, "environment": {}, "runs": {"a-draft_model-k2": {
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


def test_compare_refuses_results_from_other_hardware(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters(4, 8, 6, (4, 2)))
    paths = []
    for name, hw in (("new.json", "cpu-a-2c"), ("old.json", "nvidia-b-x1")):
        path = tmp_path / name
        path.write_text(json.dumps({"schema": 1, "environment": {"hardware": hw}, "runs": {"a-draft_model-k2": {
            "conditions": {}, "metrics": summarize(run).as_dict(), "run": run.to_dict()}}}))
        paths.append(str(path))
    assert cli.main(["compare", *paths]) == 2
    assert "timings from different hardware are not compared" in capsys.readouterr().err


def test_compare_two_results_files_judges_them(tmp_path, capsys):
    run = RunResult("a-draft_model-k2", "sequential", 2, 2.0, (RequestRecord(5, 10, 2.0),), SpecCounters(4, 8, 6, (4, 2)))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema": 1, "environment": {"hardware": "cpu-a-2c", "vllm": "1", "torch": "1"},
                                "runs": {"a-draft_model-k2": {"conditions": {}, "metrics": summarize(run).as_dict(),
                                                              "run": run.to_dict()}}}))
    assert cli.main(["compare", str(path), str(path)]) == 0
    assert "a-draft_model-k2: pass" in capsys.readouterr().out


def test_report_writes_every_chart_and_the_summary(tmp_path, capsys):
    from specgate.charts import CHART_NAMES

    path = tmp_path / "results.json"
    path.write_text(json.dumps(_sweep_doc()))
    assert cli.main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.png")) == sorted(CHART_NAMES)
    best = out.split("### Best k")[1].split("###")[0]
    good = [c.strip() for c in next(line for line in best.splitlines() if "| good" in line).split("|")]
    # Measured: 60 tokens in 1.1 s against the control's 60 in 1.2 s -> 1.091 at k=1, falling after.
    # Model: alpha 0.8; c = median over k of (0.3 wall / 125 k) / (0.9 x 1.2 s / 60 steps) = 0.08;
    # (1 - 0.8^(k+1)) / 0.2 / (1 + 0.08 k) peaks at k=6: 3.9514 / 1.48 = 2.670.
    assert good[1:8] == ["good", "1", "1.091", "6", "2.670", "0.800", "0.080"]
    assert (tmp_path / "out" / "summary.md").read_text() == out.split("\nspecgate: ")[0]


def test_report_into_an_unwritable_folder_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_sweep_doc()))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["report", str(path), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the report to" in err and "--specgate-reports" in err
