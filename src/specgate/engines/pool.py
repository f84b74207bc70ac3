"""Which engines are alive: at most one per role (the condition's engine, the paired control,
the machine reference), so a sweep over many pairings runs in the memory of its largest engine.
Engines (engine.Engine) and servers (serving.Server) are built here, never by each other."""

from __future__ import annotations

from specgate.engines.arguments import engine_key
from specgate.engines.backend import Backend
from specgate.engines.engine import Engine
from specgate.engines.errors import EngineError
from specgate.engines.serving import Server
from specgate.matrix.conditions import Condition


class EnginePool:
    """Holds at most one live engine or server per role (the condition's: ``current``; the paired
    control: ``paired``) and one machine reference per target; asking a role for other engine
    arguments closes its engine first."""

    def __init__(self, log=None, stage_timers: bool = True, clock: str | None = None,
                 server_urls: dict[str, str] | None = None):
        self.current: Backend | None = None
        self.paired: Engine | None = None  # the no-speculation engine kept beside (paired_control)
        self.references: dict[str, object] = {}  # target -> reference_timing.MachineReference
        self.server_urls = server_urls or {}  # condition id -> running server to use instead of starting one
        self.log = log or (lambda msg: None)
        self.builds = 0
        self.stage_timers, self.clock = stage_timers, clock
        self.failed: dict[str, EngineError] = {}  # engine key -> why it did not build (not retried)

    def get(self, condition: Condition) -> Backend:
        self._after_crash()
        key = self._unfailed(condition)
        if self._live(self.current, key):
            return self.current
        self._close("current")
        if condition.mode == "serving":
            engine = Server(condition, self.server_urls.get(condition.id))
        else:
            engine = Engine(condition, self.stage_timers, self.clock)
            engine.progress = self.log
        self.current = self._build(engine, key, "engine")
        return self.current

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
        self._after_crash()
        control = condition.control
        key = self._unfailed(control)
        if self._live(self.paired, key):
            return self.paired
        self._close("paired")
        if self._live(self.current, key):
            self.paired, self.current = self.current, None  # the control's own test just ran on it
            return self.paired
        self._close("current")  # built after it, the control would take its counters (see get)
        self.paired = self._build(Engine(control, stage_timers=False), key, "the paired control engine")
        return self.paired

    # One protocol for every role: a key that failed is not retried, a live engine with the same
    # key is reused, anything else is closed before the next one is built.

    def _after_crash(self) -> None:
        """After an engine crashed mid-run, close every engine of the process and build the next
        ones fresh: a crash may leave vLLM's process-wide state torn down (once, an in-process engine
        beside a crashed EAGLE engine failed its next request with "pipeline model parallel group is
        not initialized"), and a neighbour whose state is unknown must not be judged. A rebuilt
        control costs seconds; a run judged on a half-dead one costs a false verdict."""
        if any(e is not None and e.broken for e in (self.current, self.paired)):
            self.log("an engine crashed: closing every engine of this process; the next ones are built fresh")
            self.close()

    def _unfailed(self, condition: Condition) -> str:
        key = engine_key(condition)
        if key in self.failed:
            raise self.failed[key]
        return key

    @staticmethod
    def _live(engine: Backend | None, key: str) -> bool:
        return engine is not None and engine_key(engine.condition) == key and not engine.broken

    def _close(self, role: str) -> None:
        engine = getattr(self, role)
        setattr(self, role, None)
        if engine is not None:
            engine.close()

    def _build(self, engine: Backend, key: str, what: str) -> Backend:
        self.log(f"building {what} {engine.condition.id}")
        try:
            engine.build()
        except EngineError as exc:
            self.failed[key] = exc
            self.log(str(exc))
            raise
        self.builds += 1
        self.log(f"{what} {engine.condition.id} ready in {engine.build_s:.1f}s")
        return engine

    def close(self) -> None:
        self._close("current")
        self._close("paired")
