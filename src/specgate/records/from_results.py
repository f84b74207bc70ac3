"""A saved results document read as baseline records: what `specgate baseline update` writes, and
the base files `specgate compare --base` and `specgate ab` judge against (a results file or the
baseline folder)."""

from __future__ import annotations

from pathlib import Path

from specgate.records.baselines import (PORTABLE, TIMING, BaselineFile, BaselineStore, condition_records,
                                        unsupported_record)


def records(doc: dict, environment: dict) -> tuple[dict, dict]:
    """Portable and timing records of every run of a results document."""
    portable, timing = {}, {}
    for cid, e in doc["runs"].items():
        if (e.get("verdict") or {}).get("status") == "error":
            continue  # its test failed before a verdict: nothing to record
        if e.get("run") is None:  # a feature cell vLLM refused
            portable[cid] = unsupported_record(e["conditions"], environment, e.get("unsupported", "refused"))
            continue
        control = (doc["runs"].get(e.get("control") or "") or {}).get("run")
        portable[cid], timed = condition_records(e["conditions"], environment, e["metrics"], e["run"], control,
                                                 e.get("code_path"))
        if timed is not None:
            timing[cid] = timed
    return portable, timing


def files_from_results(base: dict, source: Path, hardware: str | None) -> tuple[BaselineFile, BaselineFile]:
    portable, timing = records(base, base["environment"])
    same_hw = base["environment"].get("hardware") == hardware
    return (BaselineFile(source, PORTABLE, None, portable),
            BaselineFile(source, TIMING, hardware, timing if same_hw else {}))


def files_from_folder(folder: Path, hardware: str) -> tuple[BaselineFile, BaselineFile]:
    store = BaselineStore(folder, hardware)
    return store.portable(), store.timing()
