"""Safe defaults: no remote code unless a pairing asks, and no secrets in what specgate writes."""

import json

from paths import ROOT
from specgate.engines.arguments import llm_kwargs
from specgate.matrix import config
from specgate.records import environment
from specgate.records.baselines import condition_facts


def _condition(tmp_path, extra=""):
    path = tmp_path / "p.toml"
    path.write_text(f"[[pairing]]\nname='x'\ntarget='org/model'\nmethod='ngram'\nk=1\n{extra}")
    return config.load(path).conditions()[1]


def test_remote_code_is_off_unless_the_pairing_asks(tmp_path):
    assert llm_kwargs(_condition(tmp_path))["trust_remote_code"] is False
    assert llm_kwargs(_condition(tmp_path, "engine={trust_remote_code=true}\n"))["trust_remote_code"] is True


def test_no_environment_secret_reaches_recorded_facts(tmp_path, monkeypatch):
    secret = "hf_DoNotLeakThisToken123"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "GITHUB_TOKEN"):
        monkeypatch.setenv(name, secret)
    written = json.dumps([environment.environment(None, ROOT), condition_facts(_condition(tmp_path))])
    assert secret not in written
