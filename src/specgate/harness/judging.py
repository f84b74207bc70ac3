"""Each finished run's verdict: its facts, the in-run checks (tokens equal the control's,
speculation happened, a feature cell's own checks), then either staged as a baseline
(--specgate-update-baselines) or judged against the stored records (loaded once per session),
and known vLLM defects applied. Holds the verdicts and the staged records until the end."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from specgate.core.metrics import RunMetrics
from specgate.core.results import RunResult
from specgate.engines import known_defects
from specgate.gate import correctness, feature_checks, judge
from specgate.gate import verdict as verdict_mod
from specgate.gate.verdict import Verdict
from specgate.matrix import preflight as preflight_mod
from specgate.matrix import prompts as prompts_mod
from specgate.matrix.conditions import DRAFTS_EVERY_STEP, Condition
from specgate.matrix.prompts import Prompt
from specgate.records import baselines as baselines_mod
from specgate.records.baselines import BaselineError, BaselineStore


@dataclass(frozen=True)
class FinishedRun:
    """One condition's finished run and what it is judged beside: the judging chain's one argument.

    ``control``: the no-speculation run (None for a control); ``plain``: a feature cell's plain
    cell; ``again``: a feature cell's second run, when its feature checks reproducibility;
    ``decode``: token ids -> text (messages, the stop-string oracle); ``calls``: what one short request called
    (engines/code_path.py)."""

    condition: Condition
    result: RunResult
    metrics: RunMetrics
    prompts: list[Prompt]
    control: RunResult | None = None
    plain: RunResult | None = None
    again: RunResult | None = None
    decode: Callable[[list[int]], str] | None = None
    calls: dict | None = None
    encode: Callable[[str], list[int]] | None = None  # text -> the target's token ids
    eos_token_id: int | None = None


class Judging:
    def __init__(self, store: Callable[[], BaselineStore], environment: Callable[[], dict], record: bool):
        self._store, self._environment, self.record = store, environment, record
        self.verdicts: dict[str, Verdict] = {}
        self.staged: dict[str, dict] = {}
        self.staged_timing: dict[str, dict] = {}
        self._files: dict[str, object] = {}  # "portable" / "timing" -> BaselineFile or BaselineError

    def baseline_file(self, kind: str):
        """The portable or this hardware's timing file, loaded once; a broken file fails every
        benchmark that needs it."""
        if kind not in self._files:
            store = self._store()
            try:
                self._files[kind] = store.portable() if kind == baselines_mod.PORTABLE else store.timing()
            except BaselineError as exc:
                self._files[kind] = exc
        found = self._files[kind]
        if isinstance(found, BaselineError):
            raise found
        return found

    @staticmethod
    def facts(condition: Condition) -> dict:
        """The condition's facts, with the prompts max_prompt_tokens dropped: another tokenizer or
        data file that drops others is another workload."""
        dropped = None
        if "max_prompt_tokens" in condition.pairing.prompt_options:
            try:
                dropped = preflight_mod.prompt_sample(condition.pairing)[1]
            except prompts_mod.PromptSetError:
                pass  # the condition's tests fail with the reason (Supply.prompts)
        return baselines_mod.condition_facts(condition, dropped)

    def judge(self, finished: FinishedRun) -> Verdict:
        """The in-run checks, then the run staged as a baseline (--specgate-update-baselines) or
        judged against the stored records; a known vLLM defect turns a failure into an xfail."""
        condition, result, control = finished.condition, finished.result, finished.control
        facts, env, ids = self.facts(condition), self._environment(), [p.id for p in finished.prompts]
        problems = correctness.in_run_problems(condition, result, control, ids, finished.decode,
                                               known_defects.past_end_allowance(condition.k))
        if condition.feature:
            problems += feature_checks.problems(condition.feature, result, control, finished.plain, finished.again,
                                                ids, finished.decode, finished.encode, finished.eos_token_id,
                                                condition.temperature == 0.0,
                                                condition.method in DRAFTS_EVERY_STEP)
        if self.record:
            verdict = self._stage(finished, facts, env, problems)
        else:
            portable = self.baseline_file(baselines_mod.PORTABLE).find(condition.id, facts)
            elsewhere = [t for t in self._store().timing_hardware() if t != env["hardware"]]
            timing = ((None, "a feature cell's subject is correctness") if condition.feature else
                      self.baseline_file(baselines_mod.TIMING).find_timing(condition.id, facts, elsewhere))
            evidence = judge.Evidence(result, control, portable, timing, ids, problems,
                                     (f"feature {condition.feature}",) if condition.feature else (), finished.calls)
            verdict = judge.judge_condition(evidence, env, condition.pairing.tolerances)
            verdict = dataclasses.replace(verdict, notes=verdict.notes + _worked_around(condition))
        self.verdicts[condition.id] = verdict = _known_defect(condition, verdict)
        return verdict

    def _stage(self, finished: FinishedRun, facts: dict, env: dict, problems: list[str]) -> Verdict:
        """The run's records, staged to be saved at the end (never a run whose in-run checks failed)."""
        condition, result, control = finished.condition, finished.result, finished.control
        if problems:
            return verdict_mod.combine([], problems, prefix="not recorded: ")
        portable, timed = baselines_mod.condition_records(facts, env, finished.metrics.as_dict(), result.to_dict(),
                                                          None if control is None else control.to_dict(),
                                                          finished.calls)
        self.staged[condition.id] = portable
        if timed is not None:
            self.staged_timing[condition.id] = timed
        return Verdict("recorded", f"staged as the baseline for {condition.id}")

    def judge_refused(self, condition: Condition, reason: str) -> Verdict:
        """A feature cell vLLM refused: recorded as unsupported, or judged against the record."""
        facts, env = self.facts(condition), self._environment()
        if self.record:
            self.staged[condition.id] = baselines_mod.unsupported_record(facts, env, reason)
            verdict = Verdict("recorded", f"staged as unsupported: {reason}")
        else:
            portable = self.baseline_file(baselines_mod.PORTABLE).find(condition.id, facts)
            verdict = judge.judge_refused(reason, portable, env)
        self.verdicts[condition.id] = verdict
        return verdict

    def save(self, interrupted: bool) -> tuple[bool, list[tuple[str, bool]]]:
        """Write the staged records (never after an interrupt: a partial sweep must not replace the
        stored baselines) -> (False when something that should have been saved was not, messages)."""
        if not self.staged:
            return True, []
        store = self._store()
        if interrupted:
            return False, [(f"run interrupted: {len(self.staged)} staged baseline records NOT saved "
                            f"({', '.join(self.staged)}); {store.folder} is unchanged", True)]
        try:
            written = store.save(self.staged, self.staged_timing)
        except BaselineError as exc:  # also an unwritable file: BaselineFile.update says so
            return False, [(f"baselines NOT saved: {exc}", True)]
        return True, [(f"{len(self.staged)} baseline records written to {' and '.join(str(p) for p in written)}", False)]


def _worked_around(condition: Condition) -> tuple[str, ...]:
    """A note naming the known defects this build shows that the cell ran around
    (engines/known_defects.reference_path): its figures are then the reference path's."""
    shown = [key for key in condition.works_around if known_defects.present((key,))]
    return ((f"ran on specgate's reference path around known vLLM defect(s) {', '.join(shown)} "
             f"(docs/known-defects.md)",) if shown else ())


def _known_defect(condition: Condition, verdict: Verdict) -> Verdict:
    """A feature cell that a known vLLM defect breaks on this build is an expected failure; if it
    passes there, the defect is fixed and its entry must go (strict, like xfail)."""
    keys = condition.feature_setting.known_defects
    if condition.is_control or not keys or verdict.status not in ("pass", "fail"):
        return verdict
    defect = known_defects.present(keys)
    if defect is None:
        return verdict
    if verdict.status == "fail":
        return Verdict("known-defect", f"{defect.mark_reason()}. Failed as expected: {verdict.reason}",
                       verdict.checks, verdict.notes)
    return Verdict("fail", f"{defect.mark_reason()}: it passed; remove {defect.key!r} from feature "
                           f"{condition.feature!r} in specgate/matrix/features.py", verdict.checks, verdict.notes)
