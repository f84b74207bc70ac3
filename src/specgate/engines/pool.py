"""Which engines are alive: at most one per role (the condition's engine, the paired control,
the machine reference), so a sweep over many pairings runs in the memory of its largest engine.
Engines (engine.Engine) and servers (serving.Server) are built here, never by each other."""

from __future__ import annotations

from specgate.matrix.conditions import Condition
from specgate.engines.engine import Engine
from specgate.engines.errors import EngineError
from specgate.engines.arguments import engine_key
from specgate.engines.serving import Server


class EnginePool:
    """Holds at most one live engine; asking for one with other engine arguments closes it first."""

    def __init__(self, log=None, stage_timers: bool = True, clock: str | None = None,
                 server_urls: dict[str, str] | None = None):
        self.current: Engine | None = None
        self.paired: Engine | None = None  # the no-speculation engine kept beside (paired_control)
        self.references: dict[str, object] = {}  # target -> reference_timing.MachineReference
        self.server_urls = server_urls or {}  # condition id -> running server to use instead of starting one
        self.log = log or (lambda msg: None)
        self.builds = 0
        self.stage_timers, self.clock = stage_timers, clock
        self.failed: dict[str, EngineError] = {}  # engine key -> why it did not build (not retried)

    def get(self, condition: Condition) -> Engine:
        key = engine_key(condition)
        if key in self.failed:
            raise self.failed[key]
        if self.current is not None and engine_key(self.current.condition) == key and not self.current.broken:
            return self.current
        current, self.current = self.current, None
        if current is not None:
            current.close()
        self.log(f"building engine {condition.id}")
        if condition.mode == "serving":
            engine = Server(condition, self.server_urls.get(condition.id))
        else:
            engine = Engine(condition, self.stage_timers, self.clock)
            engine.progress = self.log
        try:
            engine.build()
        except EngineError as exc:
            self.failed[key] = exc
            self.log(str(exc))
            raise
        self.builds += 1
        self.log(f"engine {condition.id} ready in {engine.build_s:.1f}s")
        self.current = engine
        return engine

    def machine_reference(self, condition: Condition):
        """The vLLM-free clock to time beside a control (machine_reference pairings), loaded once."""
        p = condition.pairing
        if not (p.machine_reference and condition.is_control and condition.mode == "sequential") or condition.feature:
            return None
        if p.target not in self.references:
            from specgate.engines.reference_timing import MachineReference

            self.log(f"loading the machine reference (transformers) for {p.target_name}")
            self.references[p.target] = MachineReference(p.target, p.dtype)
        return self.references[p.target]

    def paired_control(self, condition: Condition) -> Engine | None:
        """The live no-speculation engine to time beside ``condition`` (paired_control pairings in
        sequential mode), built once per control and kept while the speculative engines change.
        Ask for it before the condition's engine (get): in one process the engine built last owns
        vLLM's Prometheus counters, and they must be the judged engine's. Both keep stat logging
        on, so both run the same per-step code and their latency ratio compares like with like."""
        if (not condition.pairing.paired_control or condition.is_control or condition.mode != "sequential"
                or condition.feature):
            return None
        control = condition.control
        key = engine_key(control)
        if key in self.failed:
            raise self.failed[key]
        if self.paired is not None and engine_key(self.paired.condition) == key and not self.paired.broken:
            return self.paired
        if self.paired is not None:
            self.paired.close()
        self.paired = None
        if self.current is not None and engine_key(self.current.condition) == key and not self.current.broken:
            self.paired, self.current = self.current, None  # the control's own test just ran on it
            return self.paired
        if self.current is not None:
            # Built after it, the control would take its counters (see get).
            self.current.close()
            self.current = None
        self.log(f"building the paired control engine {control.id}")
        engine = Engine(control, stage_timers=False)
        try:
            engine.build()
        except EngineError as exc:
            self.failed[key] = exc
            raise
        self.builds += 1
        self.paired = engine
        return engine

    def close(self) -> None:
        engine, self.current = self.current, None
        paired, self.paired = self.paired, None
        for e in (engine, paired):
            if e is not None:
                e.close()
