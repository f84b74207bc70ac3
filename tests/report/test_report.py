import json
"""What a user reads: the terminal table (at most 100 columns) and the report's pictures."""

from specgate.report import tables as report


def cpu_default_doc(matrix, status_of=lambda cid: "pass"):
    """A results document with every condition id of the CPU default, one of them failing."""
    runs = {}
    for c in matrix.conditions():
        status = status_of(c.id)
        checks = [{"metric": "acceptance_rate", "passed": status != "fail", "change": -0.123, "interval": [-0.2, -0.1],
                   "tolerance": 0.03},
                  {"metric": "latency_vs_control", "passed": True, "change": 0.031, "interval": [0.0, 0.05],
                   "tolerance": 0.1}]
        runs[c.id] = {"conditions": {"method": c.method, "k": c.k, "feature": c.feature or None},
                      "metrics": {"acceptance_rate": 0.5678, "speedup": 1.234},
                      "verdict": {"status": status, "reason": "acceptance_rate fell 12.3% (0.65 -> 0.57) " * 4,
                                  "notes": [], "checks": checks}}
    return {"runs": runs}


def test_the_terminal_table_of_the_cpu_default_fits_100_columns_most_important_first(cpu_matrix):
    failing = "fixture-aligned-draft_model-k8+structured-output"
    doc = cpu_default_doc(cpu_matrix, lambda cid: "fail" if cid == failing else "pass")
    lines = report.terminal_table(doc).splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0].split()[:6] == ["condition", "verdict", "accept", "change", "speedup", "lat/ctl"]
    row = next(line for line in lines if line.startswith(failing + " "))
    assert row.split()[1:] == ["FAIL", "0.568", "-12.3%", "-", "+3.1%"]  # a feature cell's speedup is not shown
    plain = next(line for line in lines if line.startswith("fixture-ngram-k3 "))
    assert plain.split()[1:] == ["pass", "0.568", "-12.3%", "1.234", "+3.1%"]
    # The failure's reason, wrapped below the table.
    assert lines[2 + len(doc["runs"])].startswith(f"FAIL {failing}: acceptance_rate fell 12.3%")
    assert len(lines) > 3 + len(doc["runs"])


def test_the_regression_picture_comes_first_in_the_report(tmp_path):
    from results_docs import sweep_doc
    from specgate.report.publish import write_report

    doc = sweep_doc()
    failing = doc["runs"]["bad-draft_model-k2"]["verdict"]
    failing.update(status="fail", checks=[{"metric": "acceptance_rate", "passed": False, "change": -0.2,
                                           "interval": [-0.25, -0.15], "tolerance": 0.03}])
    doc["runs"]["good-draft_model-k1"]["verdict"]["checks"] = [
        {"metric": "latency_vs_control", "passed": True, "change": 0.02, "interval": [-0.01, 0.05], "tolerance": 0.1}]
    summary, written = write_report(doc, tmp_path)
    assert (tmp_path / "regression.png").stat().st_size > 10_000
    assert summary.index("(regression.png)") < summary.index("### Metrics")
    # Without any change to draw (a recording run), there is no such picture.
    _, written = write_report(sweep_doc(), tmp_path / "recorded")
    assert "regression.png" not in [p.name for p in written]


def test_a_run_with_every_kind_of_data_writes_exactly_the_named_charts(tmp_path):
    from results_docs import sweep_doc
    from specgate.report.charts import CHART_NAMES, write_charts

    doc = sweep_doc()
    doc["runs"]["bad-draft_model-k2"]["verdict"]["checks"] = [
        {"metric": "acceptance_rate", "passed": False, "change": -0.2, "interval": [-0.25, -0.15], "tolerance": 0.03}]
    for c in (1, 4):
        facts = {"pairing": "good", "method": "draft_model", "mode": "serving", "prompt_set": "code", "concurrency": c}
        doc["runs"][f"t-nospec-serving-c{c}"] = {
            "conditions": {**facts, "method": "none", "k": 0}, "metrics": {"ttft_p50_ms": 20.0, "itl_p50_ms": 5.0}}
        doc["runs"][f"good-draft_model-k2-serving-c{c}"] = {
            "conditions": {**facts, "k": 2}, "control": f"t-nospec-serving-c{c}",
            "metrics": {"acceptance_rate": 0.8, "speedup": 1.5 / c, "ttft_p50_ms": 25.0, "itl_p50_ms": 4.0}}
    for chars, tokens in ((600, 400), (12500, 4000)):  # a drafter on prompts of two lengths
        entry = json.loads(json.dumps(doc["runs"]["good-draft_model-k2"]))
        entry["conditions"]["pairing"] = f"good-ctx{chars}"
        for r in entry["run"]["requests"]:
            r["prompt_tokens"] = tokens
        doc["runs"][f"good-ctx{chars}-draft_model-k2"] = entry
    written = write_charts(doc, tmp_path)
    assert [p.stem for p in written] == list(CHART_NAMES)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{name}.png" for name in CHART_NAMES)


def test_the_records_sources_are_named_once_each_with_what_differs_from_this_run():
    old = {"vllm": "0.31.0", "torch": "2.13.0+cpu", "hardware": "cpu-a-2c", "date": "2026-11-29T11:13:26+00:00",
           "commit": "67aaa6ac16ab57530a54b59181932fd669911ca1"}
    same = {**old, "vllm": "0.32.0"}
    env = {"vllm": "0.32.0", "torch": "2.13.0+cpu", "hardware": "cpu-a-2c"}
    lines = report.source_lines({"a": [old], "b": [old, same], "c": [same], "d": []}, env)
    assert lines == [
        "records from vLLM 0.31.0, torch 2.13.0+cpu, cpu-a-2c, recorded 2026-11-29 at commit 67aaa6ac16: "
        "2 conditions (other than this run: vllm 0.31.0 -> 0.32.0)",
        "records from vLLM 0.32.0, torch 2.13.0+cpu, cpu-a-2c, recorded 2026-11-29 at commit 67aaa6ac16: "
        "2 conditions (same software and hardware)"]
    doc = {"environment": env, "runs": {}}
    assert "Judged against" not in report.markdown_summary(doc)  # nothing judged: no source named
    for cid in ("a", "b"):
        doc["runs"][cid] = {"metrics": {}, "verdict": {"status": "pass", "reason": "", "sources": [old]},
                            "conditions": {"pairing": "p", "method": "draft_model", "k": 2, "mode": "sequential"}}
    assert "Judged against records from vLLM 0.31.0" in report.markdown_summary(doc)


def test_the_summary_explains_itself_and_never_flatters(tmp_path):
    """A header that names the run and its pairings file, a legend for the abbreviations, no speedup
    for a feature cell (not timed beside a control), and a best k that says when no k beats no
    speculation (the draft_model series of the CPU default: speedups 0.76-0.97)."""
    from results_docs import sweep_doc

    doc = sweep_doc()
    doc["environment"].update(date="2026-11-30T19:30:00+00:00", pairings="configs/cpu.toml", commit="abc1234")
    for cid, e in doc["runs"].items():
        if cid.startswith("bad"):
            e["metrics"]["speedup"] = 0.8 + 0.01 * e["metrics"]["k"]
    feature = dict(doc["runs"]["good-draft_model-k3"], conditions={**doc["runs"]["good-draft_model-k3"]["conditions"],
                                                                   "feature": "batch"})
    doc["runs"]["good-draft_model-k3+batch"] = {**feature, "metrics": {**feature["metrics"], "speedup": 4.9}}
    summary = report.markdown_summary(doc)
    assert "Run of 2026-11-30 19:30 UTC from `configs/cpu.toml`" in summary and "commit abc1234" in summary
    assert "acc rate: accepted / drafted tokens" in summary and "prop ms/tok: proposal" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| good-draft_model-k3+batch "))
    assert "4.900" not in row
    assert "**No k beats no speculation** for bad" in summary and "for good" not in summary.split("No k beats")[1]


def test_the_charts_draw_intervals_over_requests_and_the_baseline_judged_against():
    from results_docs import sweep_doc
    from specgate.report.sweep import series

    doc = sweep_doc()
    entry = doc["runs"]["good-draft_model-k2"]
    entry["verdict"]["checks"] = [{"metric": "acceptance_rate", "passed": True, "change": -0.1, "interval": None,
                                   "tolerance": 0.03}]
    # Four requests that accept differently, so that the interval over them has a width.
    one = entry["run"]["requests"][0]
    entry["run"]["requests"] = [{**one, "latency_s": one["latency_s"] * (1 + i / 10),
                                 "spec": {**one["spec"], "accepted": one["spec"]["accepted"] - 20 * i}} for i in range(4)]
    point = dict(next(s for s in series(doc) if s.label.startswith("good")).points)[2]
    low, high = point["acceptance_rate_interval"]
    accepted = [r["spec"]["accepted"] / r["spec"]["draft_tokens"] for r in entry["run"]["requests"]]
    assert min(accepted) <= low < high <= max(accepted)
    assert abs(point["acceptance_rate_baseline"] - point["acceptance_rate"] / 0.9) < 1e-12
    low, high = point["latency_mean_s_interval"]
    latencies = [r["latency_s"] for r in entry["run"]["requests"]]
    assert min(latencies) <= low < high <= max(latencies)


def test_context_series_join_one_drafter_s_pairings_by_prompt_length_and_leave_single_lengths_out():
    from results_docs import sweep_doc
    from specgate.report.sweep import context_series

    doc = sweep_doc()
    assert context_series(doc) == []  # 'good' and 'bad' ran prompts of one length
    base = doc["runs"]["good-draft_model-k2"]
    for chars, tokens in ((12500, 4000), (600, 400)):
        entry = json.loads(json.dumps(base))
        entry["conditions"]["pairing"] = f"good-ctx{chars}"
        entry["run"]["requests"][0]["prompt_tokens"] = tokens
        doc["runs"][f"good-ctx{chars}-draft_model-k2"] = entry
    [s] = context_series(doc)
    # the 'good' and 'bad' pairings at k = 2 share the key here (the doc names no draft): three
    # lengths, 'good'/'bad' at 5 tokens, then the buckets in ascending order
    assert s.label == "draft_model k=2"
    assert [round(x) for x, _, _ in s.points] == [5, 5, 400, 4000]
    assert s.points[-1][1] == "good-ctx12500" and s.points[-1][2]["acceptance_rate"] == base["metrics"]["acceptance_rate"]


def test_the_summary_has_a_context_length_section_only_when_a_drafter_ran_prompts_of_several_lengths():
    from results_docs import sweep_doc
    from specgate.report.tables import markdown_summary

    doc = sweep_doc()
    assert "Acceptance against context length" not in markdown_summary(doc)
    entry = json.loads(json.dumps(doc["runs"]["good-draft_model-k2"]))
    entry["conditions"]["pairing"] = "good-ctx4k"
    entry["run"]["requests"][0]["prompt_tokens"] = 4000
    doc["runs"]["good-ctx4k-draft_model-k2"] = entry
    section = markdown_summary(doc).split("### Acceptance against context length")[1]
    row = next(line for line in section.splitlines() if "good-ctx4k" in line)
    assert [c.strip() for c in row.split("|")[1:4]] == ["draft_model k=2", "4000", "good-ctx4k"]
