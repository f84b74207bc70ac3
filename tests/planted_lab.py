"""A condition judged the way a benchmark judges it, against a record made in the same test from
clean vLLM: for the tests that plant bugs inside vLLM (tests/vllm_plants.py) and must see each."""

import dataclasses

from paths import ROOT
from specgate.core.metrics import summarize
from specgate.engines import known_defects
from specgate.gate import correctness, judge, sanity
from specgate.matrix import prompts
from specgate.records import baselines
from specgate.records.environment import environment


class Lab:
    """Runs the control and the speculative condition in ``modes`` (sequential and batch by default),
    records each from clean vLLM, and judges later runs against those records."""

    def __init__(self, pool, spec, modes=("sequential", "batch")):
        self.spec, self.pool = spec, pool
        self.batch = dataclasses.replace(spec, mode="batch")
        self.prompts = prompts.load(spec.pairing.prompt_set, spec.pairing.num_prompts, spec.pairing.seed)
        self.ids = [p.id for p in self.prompts]
        self.env = environment(None, ROOT)
        cells = [c for c in (spec, self.batch) if c.mode in modes]
        self.control = {c.mode: self.run(c.control) for c in cells}
        self.records = {c.mode: self.record(c, self.run(c)) for c in cells}

    def run(self, condition):
        return self.pool.get(condition).run(self.prompts, condition)

    def record(self, condition, run):
        facts = baselines.condition_facts(condition)
        return baselines.portable_record(facts, self.env, summarize(run).as_dict(), run.to_dict())

    def verdict(self, condition):
        run = self.run(condition)
        control = self.control[condition.mode]
        problems = sanity.problems(condition, run, summarize(run, control))
        problems += correctness.in_run_problems(condition, run, control, self.ids,
                                                past_end_allowance=known_defects.past_end_allowance(condition.k))
        return judge.judge_condition(judge.Evidence(run, control, (self.records[condition.mode], ""),
                                                  (None, "not judged here"), self.ids, problems), self.env, {})
