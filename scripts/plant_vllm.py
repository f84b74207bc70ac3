"""A pytest plugin that plants one of tests/vllm_plants.py's bugs inside vLLM's own code for a
whole run, to show what `make bench` says about it (docs/baselines.md):

    SPECGATE_PLANT=drafter_bookkeeping_off pytest benchmarks -p scripts.plant_vllm ...

SPECGATE_PLANT names a plant of tests/vllm_plants.py (its PLANTS): drafter_bookkeeping_off,
drafts_to_wrong_slot_when_not_contiguous and drafts_dropped_when_a_request_joins are the ones
docs/baselines.md shows `make bench` catching. The per-step slowdowns, for measuring what the
timing checks catch, add to each call of the model runner's execute_model and sample_tokens a
fraction of the time the call took, so a step costs that fraction more on any machine:

    SPECGATE_PLANT=busy_in_every_step          every engine, CPU burnt
    SPECGATE_PLANT=busy_in_speculative_steps   speculative engines only
    SPECGATE_PLANT=sleep_in_every_step         time.sleep instead: wall time, no CPU time
    SPECGATE_PLANT=sleep_in_speculative_steps
    SPECGATE_PLANT_FRACTION=0.1                the fraction (default 0.1)
"""

import importlib.util
import inspect
import os
from pathlib import Path

_ACTIVE = []


def _plants():
    path = Path(__file__).resolve().parents[1] / "tests" / "vllm_plants.py"
    spec = importlib.util.spec_from_file_location("vllm_plants", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _planted(plants, name: str):
    """The plant's context manager, given SPECGATE_PLANT_FRACTION where it is set."""
    plant, fraction = plants.PLANTS[name], os.environ.get("SPECGATE_PLANT_FRACTION")
    if fraction is None:
        return plant()
    takes_fraction = [n for n, f in plants.PLANTS.items() if "fraction" in inspect.signature(f).parameters]
    if name not in takes_fraction:
        raise SystemExit(f"SPECGATE_PLANT_FRACTION: {name} takes no fraction; the plants that do: "
                         f"{', '.join(takes_fraction)}")
    try:
        value = float(fraction)
    except ValueError:
        raise SystemExit(f"SPECGATE_PLANT_FRACTION={fraction!r}: expected a number, e.g. 0.1") from None
    return plant(fraction=value)


def pytest_configure(config):
    name = os.environ.get("SPECGATE_PLANT", "")
    plants = _plants()
    if name not in plants.PLANTS:
        raise SystemExit(f"SPECGATE_PLANT={name!r}: name one of the plants of tests/vllm_plants.py: "
                         f"{', '.join(plants.PLANTS)}")
    plant = _planted(plants, name)
    plant.__enter__()
    _ACTIVE.append(plant)
    print(f"specgate: planted {name} inside vLLM for this run")


def pytest_unconfigure(config):
    while _ACTIVE:
        _ACTIVE.pop().__exit__(None, None, None)
