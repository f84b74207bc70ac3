"""Every bad input a user can give specgate, each answered by one clear error and exit status 2,
before any engine is built: pairings files, models, prompt sets, baseline and results files,
output folders and command-line flags. Run through the `specgate` command in-process."""

import json
import shutil
from pathlib import Path

import pytest

from paths import FIXTURE_MODELS
from results_docs import sweep_doc
from specgate import cli
from specgate.records.baselines import SCHEMA

HEAD = "[[pairing]]\nname='x'\nmethod='ngram'\nk=1\n"


def _pairing(tmp_path, body: str, target: str | None = None) -> Path:
    target = target or str(FIXTURE_MODELS / "target")
    path = tmp_path / "pairings.toml"
    path.write_text(f"[defaults]\ntarget = '{target}'\n" + body)
    return path


def _model_copy(tmp_path, name: str, edit_config=None, edit_tokenizer=None) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURE_MODELS / ("aligned-draft" if "draft" in name else "target"), folder)
    if edit_config:
        cfg = json.loads((folder / "config.json").read_text())
        edit_config(cfg)
        (folder / "config.json").write_text(json.dumps(cfg))
    if edit_tokenizer:
        tok = json.loads((folder / "tokenizer.json").read_text())
        edit_tokenizer(tok["model"]["vocab"])
        (folder / "tokenizer.json").write_text(json.dumps(tok))
    return folder


def _swap_two_tokens(vocab: dict) -> None:
    a, b = sorted(vocab, key=vocab.get)[300:302]
    vocab[a], vocab[b] = vocab[b], vocab[a]


def _draft_pairing(tmp_path, draft: Path) -> Path:
    return _pairing(tmp_path, f"[[pairing]]\nname='x'\nmethod='draft_model'\ndraft='{draft}'\nk=1\nnum_prompts=2\n")


def _results(tmp_path, hardware="cpu-test-2c") -> Path:
    doc = sweep_doc()
    doc["environment"]["hardware"] = hardware
    path = tmp_path / f"results-{hardware}.json"
    path.write_text(json.dumps(doc))
    return path


def _baselines(tmp_path, text: str, name: str = "portable.json") -> Path:
    folder = tmp_path / "baselines"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def _blocked(tmp_path) -> Path:
    """A folder path that cannot be created (its parent is a file), unwritable even for root."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "out"


GOOD_BASELINE = json.dumps({"schema": SCHEMA, "kind": "portable", "records": {}})
TIMING_BASELINE = json.dumps({"schema": SCHEMA, "kind": "timing", "hardware": "nvidia-h100-x1", "records": {}})

# (id, builds the argv from tmp_path, words the one error line must contain)
CASES = [
    ("malformed TOML", lambda t: ["validate", str(_pairing(t, "[[pairing]\nname=x"))], "not valid TOML"),
    ("unknown field", lambda t: ["validate", str(_pairing(t, HEAD + "colour='red'\n"))], "unknown field 'colour'"),
    ("unknown method", lambda t: ["validate", str(_pairing(t, HEAD.replace("ngram", "ngarm")))],
     "field 'method': unknown method 'ngarm'"),
    ("k zero", lambda t: ["validate", str(_pairing(t, HEAD.replace("k=1", "k=[0, 2]")))],
     "field 'k': must be a positive integer"),
    ("k not integer", lambda t: ["validate", str(_pairing(t, HEAD.replace("k=1", "k='3'")))],
     "field 'k': must be a positive integer"),
    ("negative temperature", lambda t: ["validate", str(_pairing(t, HEAD + "temperature=-0.1\n"))],
     "field 'temperature': must be >= 0"),
    ("top-p above 1", lambda t: ["validate", str(_pairing(t, HEAD + "top_p=1.2\n"))], "field 'top_p': must be in (0, 1]"),
    ("top-p zero", lambda t: ["validate", str(_pairing(t, HEAD + "top_p=0\n"))], "field 'top_p': must be in (0, 1]"),
    ("missing model path", lambda t: ["validate", str(_pairing(t, HEAD, target="./no-such-model"))],
     "no model at"),
    ("hub id offline", lambda t: ["validate", str(_pairing(t, HEAD, target="acme/never-downloaded-7b"))],
     "target 'acme/never-downloaded-7b' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
    ("draft vocabulary size differs", lambda t: ["validate", str(_draft_pairing(t, _model_copy(
        t, "draft-big-vocab", edit_config=lambda c: c.update(vocab_size=c["vocab_size"] * 2))))],
     "have different vocabularies; a draft model must use the target's tokenizer"),
    ("draft tokenizer differs", lambda t: ["validate", str(_draft_pairing(t, _model_copy(
        t, "draft-other-tokenizer", edit_tokenizer=_swap_two_tokens)))],
     "have different tokenizers (4 token/id pairs differ"),
    ("head size the CPU rejects", lambda t: ["validate", str(_pairing(t, HEAD, target=str(_model_copy(
        t, "target-head16", edit_config=lambda c: c.update(num_attention_heads=16, num_key_value_heads=16,
                                                           head_dim=16)))))],
     "has head_dim=16, which vLLM's CPU attention backend does not support"),
    ("prompt set not cached offline", lambda t: ["validate", str(_pairing(t, HEAD + "prompt_set='gsm8k-hard'\n"))],
     "prompt set 'gsm8k-hard' needs openai/gsm8k/main (test), which is not in the local datasets cache"),
    ("unknown prompt set", lambda t: ["validate", str(_pairing(t, HEAD + "prompt_set='sharegpt'\n"))],
     "unknown prompt set 'sharegpt'"),
    ("empty prompt file", lambda t: [(t / "empty.jsonl").write_text("") and None or "validate", str(_pairing(
        t, HEAD + "prompt_set='file'\nprompt_options={path='empty.jsonl'}\n"))], "empty.jsonl is empty"),
    ("prompt longer than the context", lambda t: ["validate", str(_pairing(
        t, HEAD + "prompt_set='humaneval'\nnum_prompts=164\nengine={max_model_len=256}\n"))],
     "> max_model_len 256: raise engine.max_model_len, lower max_new_tokens"),
    ("baseline file corrupt", lambda t: ["compare", str(_results(t)), "--baselines",
                                         str(_baselines(t, "{\"schema\": 1, \"hardw"))], "is not valid JSON"),
    ("baseline file truncated", lambda t: ["compare", str(_results(t)), "--baselines",
                                           str(_baselines(t, GOOD_BASELINE[: len(GOOD_BASELINE) // 2]))],
     "is not valid JSON"),
    ("baseline from a newer schema", lambda t: ["compare", str(_results(t)), "--baselines", str(_baselines(
        t, GOOD_BASELINE.replace(f'"schema": {SCHEMA}', f'"schema": {SCHEMA + 1}')))],
     f"written by a newer specgate (schema {SCHEMA + 1}"),
    ("timing baseline for other hardware", lambda t: ["compare", str(_results(t)), "--baselines", str(_baselines(
        t, TIMING_BASELINE, "timing/cpu-test-2c.json"))], "holds timing records for hardware 'nvidia-h100-x1'"),
    ("schema-1 baseline file", lambda t: ["compare", str(_results(t)), "--baselines", str(_baselines(
        t, json.dumps({"schema": 1, "hardware": "cpu-test-2c", "records": {}})))], "specgate baseline migrate"),
    ("not a results file", lambda t: ["table", str(_baselines(t, GOOD_BASELINE) / "portable.json")],
     "not a specgate results file"),
    ("unwritable baseline folder", lambda t: ["baseline", "update", str(_results(t)), "--baselines", str(_blocked(t))],
     "cannot write"),
    ("unwritable report folder", lambda t: ["report", str(_results(t)), "--out", str(_blocked(t))],
     "cannot write the report to"),
    ("plan: runners not JSON", lambda t: ["plan", str(_pairing(t, HEAD)), "--runners", "{1: gpu}"],
     "--runners '{1: gpu}': not JSON"),
    ("plan: a GPU count that is no integer", lambda t: ["plan", str(_pairing(t, HEAD)), "--runners", '{"4x": ["g"]}'],
     "--runners: key '4x' is not a GPU count (an integer >= 1)"),
    ("plan: no shards", lambda t: ["plan", str(_pairing(t, HEAD)), "--shards", "0"], "--shards 0: must be 1 or more"),
    ("plan: missing pairings file", lambda t: ["plan", str(t / "none.toml")], "none.toml: pairings file not found"),
    ("plan: a pairing bigger than every runner", lambda t: ["plan", str(_pairing(
        t, HEAD + "engine={tensor_parallel_size=8}\n")), "--runners", '{"1": ["gpu"], "4": ["gpu-4x"]}'],
     "pairing 'x' needs 8 GPUs (tensor_parallel_size x pipeline_parallel_size); the runner labels have 1 GPU: "
     "[\"gpu\"], 4 GPUs: [\"gpu-4x\"]: add a label with 8 or more GPUs to --runners"),
    ("plan: no timing records for that hardware", lambda t: ["plan", str(_pairing(t, HEAD)), "--hardware", "h100",
                                                               "--baselines", str(t)],
     "--hardware h100: no "),
    ("plan: unwritable --out", lambda t: ["plan", str(_pairing(t, HEAD)), "--out", str(_blocked(t) / "plan.json")],
     "cannot write"),
]


@pytest.mark.parametrize("argv_for, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_error(tmp_path, monkeypatch, capsys, argv_for, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on any machine without the hub; never waits on the network
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv_for(tmp_path)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("specgate: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in err


def test_bad_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "new.json", "--tolerance", "3"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --tolerance 3" in capsys.readouterr().err


def test_several_broken_pairings_are_all_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _pairing(tmp_path, HEAD + "prompt_set='gsm8k'\n" + HEAD.replace("'x'", "'y'")
                    + "prompt_set='flores'\n" + HEAD.replace("'x'", "'z'"))
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split("'")[1] for line in err] == ["x", "y"]  # z is fine; each problem once, in file order


def test_pairings_sharing_a_problem_are_named_on_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _pairing(tmp_path, HEAD + HEAD.replace("'x'", "'y'"), target="acme/never-downloaded-7b")
    assert cli.main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("specgate: error: pairings 'x', 'y': target 'acme/never-downloaded-7b' is not in")
