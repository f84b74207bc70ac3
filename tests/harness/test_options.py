"""harness.options: every specgate option read once, with its default, for the benchmark session
and the lossless suite alike."""

import subprocess
import sys
from pathlib import Path

import pytest

from specgate.harness.options import LOSSLESS_CONFIG, LOSSLESS_SAMPLES, Options

INI = {"specgate_config": "configs/cpu.toml", "specgate_baselines": "baselines", "specgate_reports": "reports"}


class GivenConfig:
    """What Options reads of a pytest.Config: these flags given, every other one left out."""

    def __init__(self, rootpath: Path, **flags):
        self.rootpath, self.flags, self.stash = rootpath, flags, pytest.Stash()

    def getoption(self, name):
        return self.flags.get(name)

    def getini(self, name):
        return INI[name]


def test_lossless_options_default_below_the_rootdir_and_are_taken_as_given(tmp_path):
    defaults = Options.read(GivenConfig(tmp_path))
    assert (defaults.lossless_config, defaults.lossless_samples) == (tmp_path / LOSSLESS_CONFIG, LOSSLESS_SAMPLES)
    assert (LOSSLESS_CONFIG, LOSSLESS_SAMPLES) == (Path("configs/lossless-cpu.toml"), 3000)
    given = Options.read(GivenConfig(tmp_path, **{"--specgate-lossless-config": "mine.toml",
                                                  "--specgate-lossless-samples": 50}))
    assert (given.lossless_config, given.lossless_samples) == (Path("mine.toml"), 50)


def test_options_are_read_once_per_run(tmp_path):
    config = GivenConfig(tmp_path)
    assert Options.of(config) is Options.of(config)


def test_the_lossless_suite_reads_its_pairings_file_from_the_options(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                           "--pyargs", "specgate.suites.test_lossless",
                           "--specgate-lossless-config", str(tmp_path / "missing.toml")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert f"lossless pairings file {tmp_path / 'missing.toml'} not found" in proc.stdout + proc.stderr


@pytest.mark.parametrize("flag", ["--specgate-num-prompts", "--specgate-max-new-tokens", "--specgate-rounds"])
def test_an_override_below_one_blames_the_flag_not_the_file(tmp_path, flag):
    with pytest.raises(pytest.UsageError, match=f"^{flag} 0: must be 1 or more$"):
        Options.read(GivenConfig(tmp_path, **{flag: 0}))
    assert Options.read(GivenConfig(tmp_path, **{flag: 2})).overrides == {flag[11:].replace("-", "_"): 2}


@pytest.mark.parametrize("flag,value,said", [
    ("--specgate-num-prompts", "0", "--specgate-num-prompts 0: must be 1 or more"),
    ("--specgate-shard", "3/2", "--specgate-shard '3/2': expected I/N with 0 <= I < N"),
    ("--specgate-server-url", "bad", "--specgate-server-url 'bad': expected CONDITION_ID=http://HOST:PORT"),
    ("--specgate-k", "1,x", "--specgate-k '1,x': expected positive integers"),
    ("--specgate-k", "9", "--specgate-k: no condition runs at k 9; the pairings run k 1, 2, 3, 4, 5, 6, 7, 8"),
])
def test_a_bad_flag_value_is_one_line_and_exit_2_without_a_traceback(flag, value, said):
    from paths import BENCHMARKS, ROOT

    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "--collect-only", "-q", "-p",
                           "no:cacheprovider", flag, value], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and f"specgate: {said}" in out, out[-2000:]
    assert "Traceback" not in out and "options.py" not in out  # the message alone, no stack


def test_specgate_k_selects_exactly_those_k_with_the_controls_they_need(tmp_path):
    """-k k1 also selects k10; --specgate-k 1 does not, and keeps the control k1 is timed against."""
    from paths import BENCHMARKS, FIXTURE_MODELS, ROOT
    from small_matrix import defaults

    cfg = tmp_path / "p.toml"
    cfg.write_text(defaults(2) + f"""
[[pairing]]
name = "a"
method = "draft_model"
draft = "{FIXTURE_MODELS}/aligned-draft"
k = [1, 3, 10]
[[pairing]]
name = "other"
method = "ngram"
k = [3]
temperature = 0.5
""")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "--collect-only", "-q", "-p",
                           "no:cacheprovider", "--specgate-config", str(cfg), "--specgate-k", "1", "--specgate-k", "10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    ids = [line.split("[", 1)[1].rstrip("]") for line in proc.stdout.splitlines() if "::test_speculative[" in line]
    # The ngram pairing's control (another temperature) is no k's control here: left out.
    assert ids == ["fixture-nospec", "a-draft_model-k1", "a-draft_model-k10"], proc.stdout[-2000:]


def _collect(cfg, *flags) -> subprocess.CompletedProcess:
    from paths import BENCHMARKS, ROOT

    return subprocess.run([sys.executable, "-m", "pytest", str(BENCHMARKS), "--collect-only", "-q", "-p",
                           "no:cacheprovider", "--specgate-config", str(cfg), *flags],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def _planned(tmp_path):
    """Three pairings and a plan that gives shard 0 the second alone, where --specgate-shard's
    round-robin would give it the first and the third."""
    from small_matrix import defaults
    from specgate.matrix import config
    from specgate.records import plan

    cfg = tmp_path / "p.toml"
    cfg.write_text(defaults(2) + """
[[pairing]]
name = "a"
method = "ngram"
k = [1]
[[pairing]]
name = "b"
method = "ngram"
k = [2]
temperature = 0.5
[[pairing]]
name = "c"
method = "ngram"
k = [3]
""")
    made = plan.make(config.load(cfg), 2, [plan.Runner(None, plan.DEFAULT_RUNS_ON)])
    made["shards"][0]["pairings"], made["shards"][1]["pairings"] = ["b"], ["a", "c"]
    plan.write(tmp_path / "plan.json", made)
    return cfg, tmp_path / "plan.json"


def test_specgate_plan_runs_the_pairings_the_plan_gives_the_shard_with_their_controls(tmp_path):
    cfg, planned = _planned(tmp_path)
    ran = []
    for shard in ("0/2", "1/2"):
        proc = _collect(cfg, "--specgate-shard", shard, "--specgate-plan", str(planned))
        ran.append([line.split("[", 1)[1].rstrip("]") for line in proc.stdout.splitlines()
                    if "::test_speculative[" in line])
        assert proc.returncode == 0, proc.stdout[-2000:]
    # b samples at temperature 0.5: a control of its own; a and c share theirs.
    assert ran == [["fixture.b-nospec", "b-ngram-k2"], ["fixture-nospec", "a-ngram-k1", "c-ngram-k3"]]


@pytest.mark.parametrize("flags,said", [
    (["--specgate-shard", "0/3"], "has 2 shards, this run is --specgate-shard 0/3; pass --specgate-shard I/2 or re-run "
                                  "`specgate plan"),
    (["--specgate-shard", "0/2", "--specgate-config", "OTHER"], "not for this run's"),
    ([], "give the shard of the plan to run with --specgate-shard I/N"),
])
def test_a_plan_made_for_another_file_or_shard_count_is_refused(tmp_path, flags, said):
    cfg, planned = _planned(tmp_path)
    other = tmp_path / "other.toml"
    other.write_text(cfg.read_text().replace('name = "c"', 'name = "d"'))
    flags = [str(other) if f == "OTHER" else f for f in flags]
    proc = _collect(cfg, "--specgate-plan", str(planned), *flags)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and f"specgate: --specgate-plan {planned}" in out and said in out, out[-2000:]
    assert "Traceback" not in out
