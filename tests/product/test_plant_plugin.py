"""scripts/plant_vllm.py: a planted vLLM bug for a whole benchmark run, named by SPECGATE_PLANT."""

import pytest

from scripts import plant_vllm


def test_an_unknown_plant_stops_the_run_with_the_names_it_knows(monkeypatch):
    monkeypatch.setenv("SPECGATE_PLANT", "drafter_bookeeping_off")
    with pytest.raises(SystemExit) as stopped:
        plant_vllm.pytest_configure(None)
    assert "SPECGATE_PLANT='drafter_bookeeping_off'" in str(stopped.value)
    assert "drafter_bookkeeping_off" in str(stopped.value) and "drafts_to_wrong_slot_when_not_contiguous" in str(stopped.value)


def test_only_plants_are_offered():
    names = set(plant_vllm._plants().PLANTS)
    assert {"drafter_bookkeeping_off", "drafts_dropped_when_a_request_joins", "every_draft_accepted"} <= names
    assert not names & {"pytest", "contextlib", "zlib"}
