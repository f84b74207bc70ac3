"""Lossless sampling through whole vLLM engines: at temperature > 0 a speculative engine's first two
tokens (the second from a speculative step) follow the target's exact distribution, for every
pairing x k of --specgate-lossless-config under every setting of specgate.lossless.whole_engine.SETTINGS.

Each cell's false-failure probability is at most 1e-6 (specgate.lossless.whole_engine.ALPHA); seeds are fixed.

On vLLM builds with a known defect in the speculative sampling path (specgate.engines.known_defects),
two forms run:
- the reference path: the defect worked around, so clean vLLM passes and any other bug in the
  engine (proposer, scoring, rejection sampler, random streams) still fails these tests;
- as shipped: a strict expected failure on the builds the defect was measured on, so a fixed
  vLLM turns it into a failure that says to remove the mark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from specgate.engines import known_defects
from specgate.harness.options import Options
from specgate.lossless import logprobs, whole_engine
from specgate.lossless.lab import LosslessLab, SETTINGS
from specgate.matrix import config
from specgate.matrix.conditions import DRAFTS_EVERY_STEP

# Proposers that draft at every step must have drafted for (nearly) every request, else speculation
# silently turned off. ngram drafts only where the text repeats: a cell in which it rarely drafted
# tests little of the speculative path and says so (measured shares: docs/lossless.md).
MIN_DRAFTED_EVERY_STEP, MIN_DRAFTED_NGRAM = 0.9, 0.2


def _config(cfg) -> Path:
    path = Options.of(cfg).lossless_config
    if not path.is_file():
        raise pytest.UsageError(f"specgate: lossless pairings file {path} not found: pass --specgate-lossless-config PATH")
    return path


def pytest_generate_tests(metafunc):
    if "cid" not in metafunc.fixturenames:
        return
    cells = [c for c in config.load(_config(metafunc.config)).conditions() if not c.is_control]
    if metafunc.function.__name__ in ("test_lossless_as_shipped", "test_logprobs_at_temperature_are_the_targets"):
        # The defects sit in the sampler path every pairing shares, and as shipped every cell fails
        # from them (docs/lossless.md's table has them all): one cell, the first pairing at its
        # smallest k, ties each defect to the builds it was measured on; the reference path runs them all.
        # Logprobs of speculative positions come from that shared rejection sampler too.
        cells = sorted((c for c in cells if c.pairing.name == cells[0].pairing.name), key=lambda c: c.k)[:1]
    if "setting" not in metafunc.fixturenames:
        metafunc.parametrize("cid", [c.id for c in cells])
        return
    visible = metafunc.function.__name__ == "test_lossless_cell_can_see_its_setting"
    smallest = {}
    for c in cells:
        smallest[c.pairing.name] = min(smallest.get(c.pairing.name, c.k), c.k)
    # Cell-major, so each engine is built once. Function scope: at module scope pytest regroups the
    # tests by each parameter's values and interleaved the cells (greedy k1, k3, k1, ...), rebuilding
    # an engine for most tests.
    metafunc.parametrize(("cid", "setting"), [
        (c.id, name) for c in cells for name, s in SETTINGS.items()
        if (s.off or not visible) and (not s.methods or c.method in s.methods)
        and (not s.smallest_k_only or c.k == smallest[c.pairing.name])])


@pytest.fixture(scope="module")
def lab(request):
    lab = LosslessLab(_config(request.config), Options.of(request.config).lossless_samples)
    yield lab
    lab.close()


def _assert_lossless(lab, cid, setting):
    method = lab.conditions[cid].method
    try:
        judgement, sample = lab.judge(cid, setting)
    except whole_engine.Unsupported as exc:
        pytest.skip(f"unsupported: vLLM refuses {setting} with {method}: {exc}")
    if method in DRAFTS_EVERY_STEP:
        assert sample.drafted_share >= MIN_DRAFTED_EVERY_STEP, (
            f"{cid} {setting}: only {sample.drafted_share:.0%} of requests drafted: speculation turned off")
    elif sample.drafted_share < MIN_DRAFTED_NGRAM:
        pytest.skip(f"{cid} {setting}: only {sample.drafted_share:.0%} of requests drafted (no repeats to match "
                    f"under this setting): too few to test the speculative path")
    assert judgement.passed, f"{cid} {setting}: not the target distribution: {judgement.describe()}"


# A cell proves something about a setting only if it would see the setting ignored at the speculative
# position: the shift that makes must be at least twice the smallest shift the cell detects.
VISIBILITY = 2.0


def test_lossless_cell_can_see_its_setting(lab, cid, setting):
    seen = lab.visibility(cid, setting)
    if seen is None:
        pytest.skip(f"{cid}: a target too large to enumerate")
    shift, detectable, test = seen
    assert shift >= VISIBILITY * detectable, (
        f"{cid} {setting}: ignoring the setting at the speculative position moves the {test} by TV {shift:.3f}, "
        f"under {VISIBILITY:g} x the {detectable:.3f} this cell detects: it cannot see its setting. Use a stronger "
        f"setting, a prompt it acts on (Setting.prompt), or more samples (--specgate-lossless-samples)")


def test_lossless_reference_path(lab, cid, setting):
    lab.engine(cid)  # an engine registers the platform's kernels, which the defect probes call
    with known_defects.reference_path():
        _assert_lossless(lab, cid, setting)


AS_SHIPPED = {"temperature-0.7-top-p-0.8": known_defects.CPU_EXPAND, "top-k-5": known_defects.CPU_EMPTY_TOP_K}


@pytest.mark.parametrize("shipped_setting", list(AS_SHIPPED))
def test_lossless_as_shipped(lab, cid, shipped_setting, request):
    defect = AS_SHIPPED[shipped_setting]
    if defect.measured_on_this_build():
        request.applymarker(pytest.mark.xfail(strict=True, reason=defect.mark_reason()))
    _assert_lossless(lab, cid, shipped_setting)


@pytest.mark.parametrize("mode", logprobs.MODES)
def test_logprobs_at_temperature_are_the_targets(lab, cid, mode):
    """Every emitted token's logprob, in each of vLLM's logprobs modes, equals the target's own
    (teacher-forced through transformers) at temperature 0.7 with a repetition penalty, where the
    two modes differ (specgate.lossless.logprobs)."""
    lab.logprobs_engine(cid, mode)  # before the reference path (LosslessLab.logprobs_engine)
    with known_defects.reference_path():
        verdict = lab.logprobs(cid, mode)
    if verdict is None:
        pytest.skip(f"{cid}: a target too large to run through transformers here")
    assert not verdict.problems, f"{cid}: " + "; ".join(verdict.problems)
