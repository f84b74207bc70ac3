"""Setups vLLM would refuse only after engines have run are refused by preflight, from vLLM's own
argument types: a typo in a pass-through table, and a method whose draft vLLM cannot build."""

import subprocess
import sys
import time

import pytest

from paths import FIXTURE_MODELS
from specgate.matrix import config, preflight, vllm_accepts

TARGET, DRAFT = FIXTURE_MODELS / "target", FIXTURE_MODELS / "aligned-draft"


def pairing(tmp_path, extra: str, method: str = "draft_model"):
    path = tmp_path / "p.toml"
    path.write_text(f"[[pairing]]\nname = 'x'\ntarget = '{TARGET}'\ndraft = '{DRAFT}'\nmethod = '{method}'\nk = 2\n"
                    f"num_prompts = 2\n{extra}\n")
    return config.load(path).pairings[0]


def test_vllm_s_own_argument_names_are_read():
    found = vllm_accepts.fields()
    assert found, "vLLM is installed in this project's environment"
    assert {"enforce_eager", "max_model_len", "tensor_parallel_size"} <= found["engine"]
    assert {"draft_sample_method", "num_speculative_tokens"} <= found["speculative"]
    assert {"temperature", "min_tokens", "stop"} <= found["sampling"]


@pytest.mark.parametrize("extra,field,named", [
    ("engine = { enforce_eagr = true, max_model_len = 512 }", "'engine'", "'enforce_eagr' (did you mean 'enforce_eager'?)"),
    ("engine = { tensor_paralel_size = 2 }", "'engine'", "'tensor_paralel_size' (did you mean 'tensor_parallel_size'?)"),
    ("speculative = { draft_sample_methd = 'greedy' }", "'speculative'",
     "'draft_sample_methd' (did you mean 'draft_sample_method'?)"),
    ("features = { prefix-caching = { max_num_seq = 4 } }", "'features.prefix-caching'", "'max_num_seq'"),
    ("sampling = { min_tokns = 4 }", "'sampling'", "'min_tokns' (did you mean 'min_tokens'?)"),
])
def test_a_typo_in_a_pass_through_table_fails_preflight_with_the_name_vllm_takes(tmp_path, extra, field, named):
    p = pairing(tmp_path, extra)
    with pytest.raises(preflight.PreflightError) as err:
        preflight.check(p)
    assert f"field {field}: the installed vLLM" in str(err.value) and named in str(err.value)


def test_sampling_vllm_refuses_fails_preflight_with_vllm_s_reason(tmp_path):
    with pytest.raises(preflight.PreflightError) as err:
        preflight.check(pairing(tmp_path, "sampling = { min_tokens = 100 }"))
    assert "field 'sampling': vLLM's SamplingParams refuses it: min_tokens must be less than or equal to " \
           "max_tokens" in str(err.value)
    preflight.check(pairing(tmp_path, "sampling = { min_tokens = 4, stop = ['\\n'], stop_token_texts = ['('] }"))


def test_correct_tables_and_every_feature_of_the_cpu_default_pass(tmp_path, cpu_matrix):
    from specgate.matrix.features import FEATURES

    for p in cpu_matrix.pairings:
        preflight.check_vllm_accepts(p)
    for feature in FEATURES.values():  # specgate's own tables, passed to vLLM as given
        assert not vllm_accepts.unknown_keys("engine", feature.engine), feature.name
        assert not vllm_accepts.unknown_keys("sampling", feature.sampling), feature.name
        assert not vllm_accepts.unknown_keys("speculative", feature.speculative), feature.name
    preflight.check_vllm_accepts(pairing(tmp_path, "engine = { enforce_eager = true }\n"
                                                   "speculative = { draft_sample_method = 'greedy' }"))


def test_a_method_vllm_names_but_cannot_build_fails_preflight(tmp_path):
    problem = vllm_accepts.method_problem("mlp_speculator")
    assert problem and "MLPSpeculatorPreTrainedModel" in problem  # vLLM 0.32 registers no such class
    assert vllm_accepts.method_problem("medusa") is None and vllm_accepts.method_problem("draft_model") is None
    with pytest.raises(preflight.PreflightError, match="cannot build method 'mlp_speculator'"):
        preflight.check(pairing(tmp_path, "", method="mlp_speculator"))


def test_a_medusa_schedule_that_would_crash_this_vllm_fails_preflight(tmp_path):
    extra = "speculative = { num_speculative_tokens_per_batch_size = [[1, 1, 2], [2, 4, 1]] }"
    medusa = pairing(tmp_path, extra, method="medusa")
    if not vllm_accepts.medusa_asserts_fixed_k():
        preflight.check_vllm_accepts(medusa)  # a build without the defect runs it
        return
    with pytest.raises(preflight.PreflightError, match="medusa-fixed-k.*remove the schedule"):
        preflight.check_vllm_accepts(medusa)
    preflight.check_vllm_accepts(pairing(tmp_path, extra))  # draft_model runs the same schedule


def test_validate_refuses_them_in_seconds_without_an_engine(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(f"[[pairing]]\nname = 'typo'\ntarget = '{TARGET}'\ndraft = '{DRAFT}'\nmethod = 'draft_model'\n"
                    f"k = 2\nengine = {{ enforce_eagr = true }}\n\n"
                    f"[[pairing]]\nname = 'mlp'\ntarget = '{TARGET}'\ndraft = '{DRAFT}'\nmethod = 'mlp_speculator'\n"
                    f"k = 2\n")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "specgate.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=120)
    took = time.perf_counter() - started
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("specgate: error:")]
    assert len(errors) == 2 and "enforce_eagr" in errors[0] and "mlp_speculator" in errors[1], proc.stderr
    assert "Traceback" not in proc.stderr
    print(f"specgate validate refused both in {took:.1f} s")  # a figure for the notes, not a timed assertion


def test_a_speculator_head_given_as_a_draft_model_names_its_method(tmp_path):
    head = tmp_path / "e3-head"
    head.mkdir()
    (head / "config.json").write_text('{"architectures": ["LlamaForCausalLMEagle3"], "vocab_size": 4096}')
    path = tmp_path / "p.toml"
    path.write_text(f"[[pairing]]\nname = 'x'\ntarget = '{TARGET}'\ndraft = './e3-head'\nmethod = 'draft_model'\n"
                    f"k = 2\nnum_prompts = 2\n")
    with pytest.raises(preflight.PreflightError, match="e3-head is a speculator head for method 'eagle3' .* use method = 'eagle3'"):
        preflight.check(config.load(path).pairings[0])
    preflight.check_draft_is_a_model(DRAFT)  # the fixture draft is a whole model


def test_preflight_reports_every_problem_of_a_pairing_at_once(tmp_path):
    """A wrong method, a head given as a draft and a prompt file that is not there: one run of
    validate names all three, instead of one per fix-and-rerun."""
    head = tmp_path / "e3-head"
    head.mkdir()
    (head / "config.json").write_text('{"architectures": ["LlamaForCausalLMEagle3"], "vocab_size": 4096}')
    path = tmp_path / "p.toml"
    path.write_text(f"[[pairing]]\nname = 'x'\ntarget = '{TARGET}'\ndraft = './e3-head'\nmethod = 'draft_model'\n"
                    f"k = 2\nnum_prompts = 2\nengine = {{ enforce_eagr = true }}\nprompt_set = 'file'\n"
                    f"prompt_options = {{ path = 'nowhere.jsonl' }}\n")
    with pytest.raises(preflight.PreflightError) as found:
        preflight.check(config.load(path).pairings[0])
    message = str(found.value)
    assert message.startswith("pairing 'x': 3 problems: (1) ") and "(did you mean 'enforce_eager'?)" in message
    assert "is a speculator head for method 'eagle3'" in message and "nowhere.jsonl" in message


@pytest.mark.parametrize("folder,switched", [("my-eagle-draft", "eagle"), ("draft_eagle3_v2", "eagle3")])
def test_a_draft_model_path_that_vllm_would_run_as_another_method_is_refused(tmp_path, folder, switched):
    import shutil

    shutil.copytree(DRAFT, tmp_path / folder)
    path = tmp_path / "p.toml"
    path.write_text(f"[[pairing]]\nname = 'x'\ntarget = '{TARGET}'\ndraft = './{folder}'\nmethod = 'draft_model'\n"
                    f"k = 2\nnum_prompts = 2\n")
    with pytest.raises(preflight.PreflightError, match=f"so vLLM would run it as method '{switched}', not 'draft_model'"):
        preflight.check(config.load(path).pairings[0])


@pytest.mark.parametrize("method,reason", [("ngram_gpu", "cannot run on this CPU vLLM: its proposer runs on CUDA"),
                                           ("dspark", "cannot run on this CPU vLLM: it runs only on vLLM's V2 model runner")])
def test_a_gpu_only_method_is_refused_on_a_cpu_vllm_with_the_reason(method, reason):
    assert vllm_accepts.on_cpu(), "this project's machines run vLLM on CPU"
    assert reason in vllm_accepts.method_problem(method)


def test_suffix_without_its_package_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "arctic_inference" else real(name, *a))
    assert vllm_accepts.method_problem("suffix") == ("method 'suffix' needs the arctic-inference package, which is not "
                                                     "installed: pip install arctic-inference")
