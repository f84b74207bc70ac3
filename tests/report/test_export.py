"""github-action-benchmark files from a results document."""

from results_docs import sweep_doc
from specgate.report.export import github_benchmark


def test_each_metric_is_one_entry_and_the_verdict_interval_is_its_range():
    doc = sweep_doc()
    entry = doc["runs"]["good-draft_model-k2"]
    entry["verdict"]["checks"] = [{"metric": "acceptance_rate", "passed": True, "change": 0.0,
                                   "interval": [-0.02, 0.04], "tolerance": 0.03}]
    files = github_benchmark(doc)
    bigger = {e["name"]: e for e in files["bigger_is_better.json"]}
    rate = bigger["good-draft_model-k2 acceptance_rate"]
    assert rate["unit"] == "ratio" and rate["value"] == entry["metrics"]["acceptance_rate"]
    assert rate["range"] == f"± {entry['metrics']['acceptance_rate'] * 0.03:.4g}"
    assert "range" not in bigger["good-draft_model-k1 acceptance_rate"]  # no check, no interval to show
    smaller = {e["name"] for e in files["smaller_is_better.json"]}
    assert "t-nospec latency_mean_s" in smaller
