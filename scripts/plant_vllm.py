"""A pytest plugin that plants one of tests/vllm_plants.py's bugs inside vLLM's own code for a
whole run, to show what `make bench` says about it (docs/baselines.md):

    SPECGATE_PLANT=drafter_bookkeeping_off pytest benchmarks -p scripts.plant_vllm ...

SPECGATE_PLANT names a plant of tests/vllm_plants.py (its PLANTS): drafter_bookkeeping_off,
drafts_to_wrong_slot_when_not_contiguous and drafts_dropped_when_a_request_joins are the ones
docs/baselines.md shows `make bench` catching.
"""

import importlib.util
import os
from pathlib import Path

_ACTIVE = []


def _plants():
    path = Path(__file__).resolve().parents[1] / "tests" / "vllm_plants.py"
    spec = importlib.util.spec_from_file_location("vllm_plants", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    name = os.environ.get("SPECGATE_PLANT", "")
    plants = _plants()
    if name not in plants.PLANTS:
        raise SystemExit(f"SPECGATE_PLANT={name!r}: name one of the plants of tests/vllm_plants.py: "
                         f"{', '.join(plants.PLANTS)}")
    plant = plants.PLANTS[name]()
    plant.__enter__()
    _ACTIVE.append(plant)
    print(f"specgate: planted {name} inside vLLM for this run")


def pytest_unconfigure(config):
    while _ACTIVE:
        _ACTIVE.pop().__exit__(None, None, None)
