"""Pairings-file validation: good files give the expected matrix, bad ones one clear error."""

from pathlib import Path

import pytest

from paths import CONFIGS
from specgate.matrix import conditions, config, vllm_accepts
from specgate.matrix.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairings.toml"
    path.write_text(text)
    return path


GOOD = """
[defaults]
target = "org/target"
k = [1, 3]
[[pairing]]
name = "a"
method = "draft_model"
draft = "org/draft"
[[pairing]]
name = "b"
method = "ngram"
k = 2
modes = ["sequential", "batch"]
temperature = 1.0
"""


def test_matrix_lists_controls_first_then_every_pairing_k_and_mode(tmp_path):
    matrix = config.load(write(tmp_path, GOOD))
    ids = [c.id for c in matrix.conditions()]
    # a and b share the target but not the temperature: two controls; the later one is told
    # apart by its pairing, so appending b did not rename a's control.
    assert ids == ["target-nospec", "target.b-nospec", "target.b-nospec-batch", "a-draft_model-k1",
                   "a-draft_model-k3", "b-ngram-k2", "b-ngram-k2-batch"]


def test_each_workload_of_the_cpu_default_has_one_control(cpu_matrix):
    ids = [c.id for c in cpu_matrix.conditions()]
    # Code in each mode, HumanEval, 16 code prompts (the heads) on the fixture target, code on its
    # MiMo twin (the MTP pairing's target), and the three context buckets (shared by both methods).
    assert ids[:8] == ["fixture-nospec", "fixture-nospec-batch", "fixture.fixture-aligned-humaneval-nospec-batch",
                       "fixture.fixture-e3-nospec", "fixture-mimo-nospec", "fixture.fixture-e3-ctx200-nospec-batch",
                       "fixture.fixture-e3-ctx600-nospec-batch", "fixture.fixture-e3-ctx900-nospec-batch"]
    assert sum("nospec" in i and "+" not in i for i in ids) == 8


def test_conditions_sharing_an_engine_run_one_after_another(cpu_matrix):
    from specgate.engines.arguments import engine_key

    cells = cpu_matrix.conditions()
    ordered = [c.id for c in conditions.run_order(cells, engine_key)]
    assert sorted(ordered) == sorted(c.id for c in cells)
    # Same models, k and engine arguments, other prompts: HumanEval runs on the aligned engine.
    k3 = ordered.index("fixture-aligned-draft_model-k3")
    assert ordered[k3 + 1] == "fixture-aligned-humaneval-draft_model-k3-batch"
    keys = [engine_key(c) for c in conditions.run_order(cells, engine_key)]
    assert all(keys.index(k) == i or keys[i - 1] == k for i, k in enumerate(keys))


def test_a_cross_request_proposer_never_shares_its_engine(cpu_matrix):
    """Suffix decoding drafts from every earlier response on its engine: shared, a condition's acceptance
    would depend on which conditions ran there before it (and change under -k or a shard)."""
    from specgate.engines.arguments import engine_key, llm_kwargs

    suffix = [c for c in cpu_matrix.conditions() if c.method == "suffix"]
    k5 = [c for c in suffix if c.k == 5]
    # The plain k5 cell and its feature cells differ only in sampling: any other method would share.
    assert len(k5) == 3 and len({repr(sorted(llm_kwargs(c).items())) for c in k5 if c.feature != "eos"}) == 1
    assert len({engine_key(c) for c in suffix}) == len(suffix)
    ngram = [c for c in cpu_matrix.conditions() if c.method == "ngram" and c.k == 5 and c.feature in ("", "boundaries")]
    assert len(ngram) == 2 and engine_key(ngram[0]) == engine_key(ngram[1])


def test_controls_are_shared_only_by_identical_workloads(tmp_path):
    matrix = config.load(write(tmp_path, GOOD))
    a1, a3, b2 = [c for c in matrix.conditions() if not c.is_control][:3]
    assert conditions.control_key(a1.control) == conditions.control_key(a3.control)
    # b runs at temperature 1: its control differs even though the target is the same.
    assert conditions.control_key(a1.control) != conditions.control_key(b2.control)


def test_at_k_keeps_the_conditions_at_those_k_and_only_the_controls_they_need(tmp_path):
    matrix = config.load(write(tmp_path, GOOD))
    assert [c.id for c in conditions.at_k(matrix.conditions(), (3,))] == ["target-nospec", "a-draft_model-k3"]
    assert [c.id for c in conditions.at_k(matrix.conditions(), (2,))] == ["target.b-nospec", "target.b-nospec-batch",
                                                                         "b-ngram-k2", "b-ngram-k2-batch"]
    with pytest.raises(conditions.UnknownPairings, match="no condition runs at k 4; the pairings run k 1, 2, 3"):
        conditions.at_k(matrix.conditions(), (3, 4))


def test_overrides_apply_to_every_pairing(tmp_path):
    matrix = config.load(write(tmp_path, GOOD), {"num_prompts": 3})
    assert {p.num_prompts for p in matrix.pairings} == {3}


def test_shipped_configs_are_valid(cpu_matrix):
    cpu = cpu_matrix
    assert [p.name for p in cpu.pairings] == ["fixture-aligned", "fixture-misaligned", "fixture",
                                              "fixture-aligned-humaneval", "fixture-e3", "fixture-e1", "fixture-heads",
                                              "fixture-mimo", "fixture-arctic"] + [
        f"fixture-{m}-ctx{b}" for b in (200, 600, 900) for m in ("e3", "aligned")]
    # aligned k 1..8, every other pairing k 1..5, the context buckets at k 3; EAGLE-3, EAGLE, Medusa,
    # MTP and suffix among them.
    cells = [c for c in cpu.conditions() if not c.is_control and not c.feature]
    assert len(cells) == 54 and {"eagle3", "eagle", "medusa", "mtp", "suffix"} <= {c.method for c in cells}
    # Fourteen feature cells each for draft_model (at k 8) and ngram (at k 5), continuous batching among
    # them, and processed logprobs; where requests end, EOS inside draft runs and the speculation
    # schedule for every method the suite gates.
    cells = [c for c in cpu.conditions() if c.feature and not c.is_control]
    assert len(cells) == 44 and {(c.method, c.k) for c in cells if c.method in ("draft_model", "ngram")} == \
        {("draft_model", 8), ("ngram", 5)}
    assert {c.method for c in cells if c.feature == "boundaries"} == {"draft_model", "ngram", "eagle3", "eagle",
                                                                      "medusa", "mtp", "suffix"}
    # Suffix decoding treats k as a ceiling and drafts what its trees hold: no schedule cell.
    assert {c.method for c in cells if c.feature == "eos"} == {c.method for c in cells if c.feature == "boundaries"}
    assert {c.method for c in cells if c.feature == "speculation-schedule"} == \
        {c.method for c in cells if c.feature == "boundaries"} - {"suffix"}
    assert {c.mode for c in cells if c.feature in ("arrivals", "speculation-schedule")} == {"arrivals"}
    # Prefix caching with the heads that draft from the target's hidden states: EAGLE-3 and MTP.
    assert {c.method for c in cells if c.feature == "prefix-caching"} == {"draft_model", "ngram", "eagle3", "mtp"}
    assert config.load(CONFIGS / "gpu.toml").pairings


BAD = [
    ("[[pairing]]\nname = 'x'\n", "missing required field 'target'"),
    ("not toml [", "not valid TOML"),
    ("[defaults]\nk = 1\n", "no [[pairing]] entries"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[1]\ncolour='red'\n", "unknown field 'colour'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngarm'\nk=[1]\n", "unknown method 'ngarm' (did you mean 'ngram'?)"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[1]\nnum_prompt=3\n",
     "unknown field 'num_prompt' (did you mean 'num_prompts'?)"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[1]\nfeatures=['prefix-cache']\n",
     "unknown feature(s) ['prefix-cache'] (did you mean 'prefix-caching'?)"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[0, 1]\n", "field 'k': must be a positive integer"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[1.5]\n", "field 'k'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=[2, 2]\n", "repeated values"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\ntemperature=-0.5\n", "field 'temperature': must be >= 0"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\ntop_p=1.5\n", "field 'top_p': must be in (0, 1]"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nnum_prompts='ten'\n", "field 'num_prompts': must be an integer"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='draft_model'\nk=1\n", "method 'draft_model' needs a draft"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\ndraft='d'\nk=1\n", "uses no draft model"),
    ("[[pairing]]\nname='x'\ntarget='./nowhere'\nmethod='ngram'\nk=1\n", "no model at"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nmodes=['async']\n", "field 'modes'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\ntolerances={latency=-1}\n", "tolerances.latency"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\ntolerances={speed=1}\n", "unknown key 'speed'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nspeculative={num_speculative_tokens=3}\n",
     "set from 'method', 'draft'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\n[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=2\n",
     "used by entries 1 and 2"),
    ("[[pairing]]\nname='has space'\ntarget='t'\nmethod='ngram'\nk=1\n", "field 'name'"),
    ("[pairings]\n", "unknown top-level table"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nthreads=-1\n", "field 'threads': must be >= 0"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nthreads=1\n[[pairing]]\nname='y'\ntarget='t'\n"
     "method='ngram'\nk=2\nthreads=2\n", "field 'threads' differs between pairings"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nprompt_set='gsm9k'\n", "unknown prompt set 'gsm9k'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nprompt_options={lang='fr'}\n",
     "prompt_options': unknown key 'lang'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nprompt_options={path=3}\n",
     "prompt_options.path': must be a non-empty string"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nsampling={max_tokens=3}\n",
     "'max_tokens' is set by the field 'max_new_tokens'; move it out of 'sampling'"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nsampling={stop_token_texts='('}\n",
     "sampling.stop_token_texts': must be a list of non-empty strings"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nworks_around=['cpu-expand-uninitialized']\n",
     "unknown known-defect key(s) ['cpu-expand-uninitialized'] (did you mean 'cpu-expand-uninitialised'?)"),
    ("[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nworks_around='cpu-expand-uninitialised'\n",
     "field 'works_around': must be a list of distinct known-defect keys"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_file_gives_one_error_naming_file_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_a_pairing_works_around_known_defects_in_its_cells_not_its_control(tmp_path):
    from specgate.records.baselines import condition_facts

    text = GOOD.replace('temperature = 1.0', 'temperature = 1.0\nworks_around = ["cpu-expand-uninitialised"]\n'
                        'features = ["speculation-schedule"]')
    cells = {c.id: c for c in config.load(write(tmp_path, text)).conditions()}
    cell, schedule = cells["b-ngram-k2"], cells["b-ngram-k2+speculation-schedule"]
    assert cell.works_around == ("cpu-expand-uninitialised",)
    assert schedule.works_around == ("cpu-expand-uninitialised", "medusa-fixed-k")  # the pairing's, then the feature's
    assert cell.control.works_around == () and cells["a-draft_model-k1"].works_around == ()
    # Figures on the reference path are other figures: the records' key says so.
    assert condition_facts(cell)["works_around"] == ["cpu-expand-uninitialised"]
    assert "works_around" not in condition_facts(cells["a-draft_model-k1"])


def test_the_defect_keys_a_pairings_file_may_name_are_the_declared_known_defects():
    from specgate.engines.known_defects import DEFECTS
    from specgate.matrix.features import FEATURES, KNOWN_DEFECT_KEYS

    assert KNOWN_DEFECT_KEYS == tuple(d.key for d in DEFECTS)
    named = {key for f in FEATURES.values() for key in f.known_defects + f.works_around}
    assert named <= set(KNOWN_DEFECT_KEYS), named - set(KNOWN_DEFECT_KEYS)


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="--specgate-config"):
        config.load(tmp_path / "absent.toml")


def test_entry_is_named_in_errors(tmp_path):
    path = write(tmp_path, GOOD + "\n[[pairing]]\nname='c'\nmethod='ngram'\nk=[-1]\n")
    with pytest.raises(ConfigError, match=r"pairing 'c' \(entry 3\): field 'k'"):
        config.load(path)


def test_relative_model_paths_resolve_against_the_file(tmp_path):
    model = tmp_path / "models" / "m"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    sub = tmp_path / "configs"
    sub.mkdir()
    path = sub / "p.toml"
    path.write_text("[[pairing]]\nname='x'\ntarget='../models/m'\nmethod='ngram'\nk=1\n")
    pairing = config.load(path).pairings[0]
    assert pairing.target == str(model.resolve())
    assert pairing.target_name == "m"


def test_prompt_file_paths_resolve_against_the_pairings_file(tmp_path):
    path = write(tmp_path, "[[pairing]]\nname='x'\ntarget='t'\nmethod='ngram'\nk=1\nprompt_set='file'\n"
                           "prompt_options={path='data/traffic.jsonl', column='prompt'}\n")
    p = config.load(path).pairings[0]
    assert p.prompt_options == {"path": str((tmp_path / "data" / "traffic.jsonl").resolve()), "column": "prompt"}


def test_controls_keep_the_timing_tolerances_of_their_pairing(cpu_matrix):
    matrix = cpu_matrix
    control = matrix.conditions()[0]
    assert control.is_control and control.pairing.tolerances == {"control_latency": 0.5}  # the file's [defaults]
    aligned = next(c for c in matrix.conditions() if c.id == "fixture-aligned-draft_model-k1")
    assert aligned.control.pairing.tolerances == {"control_latency": 0.5}  # min_acceptance_rate dropped


def test_specgate_methods_are_methods_the_installed_vllm_accepts(tmp_path):
    """A rename in vLLM shows here; a method only vLLM knows (an MTP variant) is passed through."""
    accepted = vllm_accepts.methods()
    assert accepted, "vLLM is installed in this project's environment"
    assert conditions.METHODS <= accepted, sorted(conditions.METHODS - accepted)
    extra = sorted(accepted - conditions.METHODS)[0]
    path = write(tmp_path, f"[[pairing]]\nname='x'\ntarget='t'\nmethod='{extra}'\nk=1\n")
    (tmp_path / "t").mkdir()
    assert config.load(path).pairings[0].method == extra


def test_a_model_folder_written_without_dot_slash_is_not_taken_for_a_hub_id(tmp_path):
    (tmp_path / "fixture" / "target").mkdir(parents=True)
    (tmp_path / "fixture" / "target" / "config.json").write_text("{}")
    path = write(tmp_path, "[[pairing]]\nname='x'\ntarget='fixture/target'\nmethod='ngram'\nk=1\n")
    with pytest.raises(ConfigError, match="'fixture/target' is read as a hub id, .* write './fixture/target'"):
        config.load(path)
    path.write_text("[[pairing]]\nname='x'\ntarget='./fixture/target'\nmethod='ngram'\nk=1\n")
    assert config.load(path).pairings[0].target == str((tmp_path / "fixture" / "target").resolve())
    path.write_text("[[pairing]]\nname='x'\ntarget='org/model'\nmethod='ngram'\nk=1\n")
    assert config.load(path).pairings[0].target == "org/model"  # no such folder: a hub id
