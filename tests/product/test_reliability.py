"""Failing engines, repeated engines and interrupted runs: one broken pairing does not stop the
matrix, engines free their memory, and no interruption loses or corrupts stored baselines."""

import json
import re
import signal
import subprocess
import sys

import pytest

from paths import BENCHMARKS, CPU_CONFIG, FIXTURE_MODELS, ROOT, SRC
from small_matrix import defaults
from specgate.engines.errors import EngineError
from specgate.engines.pool import EnginePool
from specgate.engines.runner import drafter, wrapped
from specgate.matrix import config, prompts
from specgate.records.baselines import BaselineFile

pytestmark = pytest.mark.engine
MATRIX = defaults(2, "tolerances = { latency = 10.0 }") + f"""
[[pairing]]
name = "good-draft"
method = "draft_model"
draft = "{FIXTURE_MODELS}/aligned-draft"
k = 1

[[pairing]]
name = "fails-to-build"
method = "ngram"
k = 2
speculative = {{ prompt_lookup_min = 5, prompt_lookup_max = 2 }}

[[pairing]]
name = "fails-preflight"
method = "ngram"
k = 1
prompt_set = "file"
prompt_options = {{ path = "missing.jsonl" }}

[[pairing]]
name = "good-ngram"
method = "ngram"
k = 1
speculative = {{ prompt_lookup_min = 2, prompt_lookup_max = 4 }}
max_new_tokens = 32
"""


def _pytest(tmp_path, *extra, **popen):
    cfg = tmp_path / "matrix.toml"
    if not cfg.exists():
        cfg.write_text(MATRIX)
    argv = [sys.executable, "-m", "pytest", str(BENCHMARKS), "-v", "-p", "no:cacheprovider",
            "--specgate-config", str(cfg), "--specgate-baselines", str(tmp_path / "baselines"),
            "--specgate-hardware-tag", "cpu-test-2c", "--specgate-reports", str(tmp_path / "reports"), *extra]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def test_a_broken_pairing_errors_alone_and_the_matrix_completes(tmp_path):
    proc = _pytest(tmp_path, "--specgate-update-baselines", "-rE")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out[-3000:]
    outcome = dict(re.findall(r"::test_speculative\[(.+?)\] (PASSED|ERROR|FAILED|SKIPPED)", out))
    assert outcome == {"fixture-nospec": "PASSED", "fixture.fails-preflight-nospec": "ERROR",
                       "fixture.good-ngram-nospec": "PASSED",
                       "good-draft-draft_model-k1": "PASSED", "fails-to-build-ngram-k2": "ERROR",
                       "fails-preflight-ngram-k1": "ERROR", "good-ngram-ngram-k1": "PASSED"}, out[-3000:]
    # Each broken pairing says why, once, without a traceback from inside vLLM.
    assert ("fails-to-build-ngram-k2: engine failed to build: ValidationError: Value error, prompt_lookup_min=5 "
            "must be <= prompt_lookup_max=2") in out
    assert "pairing 'fails-preflight': prompt set 'file': no file" in out
    assert "Traceback" not in out
    # The good conditions were recorded; the broken ones were not.
    stored = json.loads((tmp_path / "baselines" / "portable.json").read_text())["records"]
    assert set(stored) == set(json.loads((tmp_path / "baselines" / "timing" / "cpu-test-2c.json").read_text())["records"])
    assert set(stored) == {"fixture-nospec", "good-draft-draft_model-k1", "fixture.good-ngram-nospec",
                           "good-ngram-ngram-k1"}


def test_a_crash_mid_run_is_reported_and_the_next_run_gets_a_fresh_engine():
    matrix = config.load(CPU_CONFIG, {"num_prompts": 2, "max_new_tokens": 8, "rounds": 1})
    c = {x.id: x for x in matrix.conditions()}["fixture-aligned-draft_model-k2"]
    pool = EnginePool()
    try:
        engine = pool.get(c)
        calls = []

        def crash_on_third(propose):
            def crashing(*args, **kwargs):
                calls.append(1)
                if len(calls) == 3:
                    raise RuntimeError("injected drafter crash")
                return propose(*args, **kwargs)
            return crashing

        with wrapped(drafter(engine.llm), "propose", crash_on_third):
            with pytest.raises(EngineError, match="fixture-aligned-draft_model-k2: run failed: RuntimeError: "
                                                  "injected drafter crash"):
                engine.run_once(prompts.for_pairing(c.pairing), c)
        assert engine.broken
        fresh = pool.get(c)
        assert fresh is not engine and engine.llm is None and pool.builds == 2
        assert len(fresh.run_once(prompts.for_pairing(c.pairing), c).requests) == 2
    finally:
        pool.close()


def test_a_crash_beside_the_paired_control_closes_it_and_the_next_condition_is_judged_on_fresh_engines():
    matrix = config.load(CPU_CONFIG, {"num_prompts": 2, "max_new_tokens": 8, "rounds": 1})
    found = {x.id: x for x in matrix.conditions()}
    k2, k3 = found["fixture-aligned-draft_model-k2"], found["fixture-aligned-draft_model-k3"]
    ps = prompts.for_pairing(k2.pairing)
    pool = EnginePool()
    try:
        control = pool.paired_control(k2)
        engine = pool.get(k2)

        def crash(propose):
            def crashing(*args, **kwargs):
                raise RuntimeError("injected drafter crash")
            return crashing

        with wrapped(drafter(engine.llm), "propose", crash):
            with pytest.raises(EngineError, match="injected drafter crash"):
                engine.run_once(ps, k2, paired=control)
        fresh_control = pool.paired_control(k3)
        assert fresh_control is not control and control.llm is None and engine.llm is None
        result = pool.get(k3).run_once(ps, k3, paired=fresh_control)
        assert len(result.requests) == 2 and all(r.control_latency_s for r in result.requests)
        assert result.counters.drafts > 0
    finally:
        pool.close()


REPEATED_BUILDS = """
import gc, json, sys
sys.path.insert(0, {src!r})
from specgate.engines.engine import Engine
from specgate.matrix import config, prompts

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

c = {{x.id: x for x in config.load({cfg!r}, {{"num_prompts": 2, "max_new_tokens": 8, "rounds": 1}}).conditions()}}
c = c["fixture-aligned-draft_model-k2"]
ps = prompts.for_pairing(c.pairing)
rss = []
for i in range({n}):
    with Engine(c) as engine:
        engine.run_once(ps, c)
    gc.collect()
    rss.append(rss_mb())
print(json.dumps(rss))
"""


def test_twenty_engines_built_and_torn_down_in_one_process_keep_memory_flat():
    script = REPEATED_BUILDS.format(src=str(SRC), cfg=str(CPU_CONFIG), n=20)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rss = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = rss[-1] - rss[0]  # after the first teardown, libraries and allocator pools are warm
    print(f"RSS after each teardown (MB): {' '.join(f'{r:.0f}' for r in rss)}; growth {growth:.1f} MB")
    assert len(rss) == 20 and growth < 200, rss


KILLED_WRITER = """
import os, sys, time
sys.path.insert(0, {src!r})
from specgate.records import document
real_fsync = os.fsync
def stalled_fsync(fd):
    print("writing", flush=True)  # the new text is in the temporary file, not yet renamed
    time.sleep(60)
os.fsync = stalled_fsync
document.write_atomic(document.Path({path!r}), "x" * 5_000_000)
"""


def test_killing_the_baseline_writer_mid_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "portable.json"
    BaselineFile(path, "portable", None, {}).update({"a-ngram-k1": {"conditions": {}, "recorded": {},
                                                                    "metrics": {"acceptance_rate": 0.5}}})
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(src=str(SRC), path=str(path))],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    loaded = BaselineFile.load(path, "portable")
    assert loaded.records["a-ngram-k1"]["metrics"] == {"acceptance_rate": 0.5}
    # What the killed writer left is a hidden temporary file beside it, never the baseline itself.
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(name.startswith(".portable.json.") and name.endswith(".tmp") for name in leftovers)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_baseline_update_saves_nothing_and_says_so(tmp_path, signum):
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    stored = baselines / "portable.json"
    BaselineFile(stored, "portable", None, {}).update({"old-record": {"conditions": {}, "recorded": {},
                                                                      "metrics": {}}})
    before = stored.read_bytes()
    # Ctrl-C as a terminal delivers it, also when this test runs in the background (where SIGINT
    # is ignored and the child would inherit that).
    proc = _pytest(tmp_path, "--specgate-update-baselines", "--specgate-pairing", "good-draft", "--specgate-pairing",
                   "good-ngram", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stdout:  # interrupt once the first condition has been staged
        lines.append(line)
        if "PASSED" in line:
            break
    proc.send_signal(signum)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 2, out[-3000:]  # pytest's "interrupted"
    said = " ".join(out.split())  # the terminal summary wraps its lines at 100 columns
    assert "run interrupted: 1 staged baseline records NOT saved (fixture-nospec)" in said, out[-3000:]
    assert f"{baselines} is unchanged" in said
    assert stored.read_bytes() == before
