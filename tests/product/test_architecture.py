"""Structure that must not erode: every module in a wing that states its job, wings importing
only the floors below them (and vLLM only where it is driven), no import cycles, and a plugin
that stays inert (no specgate modules imported, no signal handler) in pytest runs that do not
use it."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from paths import PACKAGE

# Which wings each wing may import (README.md, "Layout"): lower floors never import higher ones.
ALLOWED = {
    "core": set(),
    "matrix": {"core"},
    "records": {"core", "matrix"},
    "gate": {"core", "matrix", "records"},
    "report": {"core", "records"},
    "engines": {"core", "matrix", "records"},
    "lossless": {"core", "matrix", "records", "engines"},
    "harness": {"core", "matrix", "records", "gate", "report", "engines", "lossless"},
    "cli": {"core", "matrix", "records", "gate", "report"},  # never builds an engine
    "suites": {"core", "matrix", "records", "gate", "engines", "lossless", "harness"},
}
# vLLM is driven by engines/ and lossless/ (its subjects are vLLM's engines and sampler); matrix asks
# the installed vLLM what it accepts (methods, attention head sizes) before any engine is built.
MAY_IMPORT_VLLM = {"engines", "lossless", "matrix.vllm_accepts", "matrix.preflight"}


def modules() -> dict[str, Path]:
    """Dotted name below specgate (e.g. "gate.verdict", "plugin") -> file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            found[name] = path
    return found


def imports_of(path: Path, name: str) -> set[str]:
    """Every module a file imports anywhere (top level or inside functions), as absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = ["specgate", *(package.split(".") if package else [])]
                base = ".".join(parts[: len(parts) + 1 - node.level])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            named = {f"{module}.{a.name}" for a in node.names}
            found |= named
            # `from package import submodule` depends on the submodule; the package itself only
            # when something else is taken from it.
            if not all((PACKAGE.parent / m.replace(".", "/")).with_suffix(".py").is_file() for m in named):
                found.add(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the specgate modules it imports."""
    mods = modules()
    return {name: {m.removeprefix("specgate.") for m in imports_of(path, name)
                   if m.startswith("specgate.") and m.removeprefix("specgate.") in mods} - {name}
            for name, path in mods.items()}


def wing(module: str) -> str:
    return module.split(".")[0]


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} imports {dep}: {wing(m)}/ may import only {sorted(ALLOWED[wing(m)]) or 'nothing of specgate'}"
            for m, deps in sorted(graph.items()) if wing(m) in ALLOWED
            for dep in sorted(deps) if wing(dep) != wing(m) and wing(dep) not in ALLOWED[wing(m)]]


def vllm_violations() -> list[str]:
    return [f"{name} imports vLLM ({path.relative_to(PACKAGE)})" for name, path in sorted(modules().items())
            if any(m == "vllm" or m.startswith("vllm.") for m in imports_of(path, name))
            and not any(name == w or name.startswith(w + ".") for w in MAY_IMPORT_VLLM)]


def test_every_module_lives_in_a_wing_that_states_its_job():
    mods = modules()
    loose = [m for m in mods if "." not in m and m not in ALLOWED and m not in ("plugin",)]
    assert not loose, f"modules outside the wings: {loose}; put each in the wing whose job it is"
    for w in ALLOWED:
        doc = ast.get_docstring(ast.parse(mods[w].read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{w}/__init__.py must state the wing's job in its docstring"


def test_wings_import_only_the_floors_below_them():
    assert not layering_violations(import_graph())
    assert not vllm_violations()


def test_the_layering_check_fails_on_a_violating_import(tmp_path):
    """The rules can fail: gate importing an engine, core importing anything of specgate, cli
    building an engine, report importing vLLM."""
    graph = import_graph()
    for module, dep in [("gate.verdict", "engines.engine"), ("core.metrics", "matrix.config"),
                        ("cli.app", "engines.pool"), ("report.tables", "harness.session")]:
        bad = {**graph, module: graph[module] | {dep}}
        assert any(f"{module} imports {dep}" in v for v in layering_violations(bad)), (module, dep)
    fake = PACKAGE / "report" / "_probe_vllm_violation.py"
    try:
        fake.write_text("def f():\n    from vllm import SamplingParams\n")
        assert any("report._probe_vllm_violation imports vLLM" in v for v in vllm_violations())
    finally:
        fake.unlink()


def test_no_import_cycles():
    graph, cycles = import_graph(), []

    def visit(start, node, path):
        for nxt in graph[node]:
            if nxt == start:
                cycles.append(" -> ".join(path + [start]))
            elif nxt not in path:
                visit(start, nxt, path + [nxt])

    for module in graph:
        visit(module, module, [module])
    assert not cycles, cycles[0]
    assert graph["engines.engine"] and "engines.serving" not in graph["engines.engine"]


def _child_pytest(tmp_path, test_body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_other.py").write_text(textwrap.dedent(test_body))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_other.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_plugin_is_inert_in_a_run_that_does_not_use_it(tmp_path):
    proc = _child_pytest(tmp_path, """
        import signal, sys

        def test_unrelated(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("specgate")  # loaded through the entry point
            assert "specgate.harness.session" not in sys.modules and "specgate.engines.engine" not in sys.modules
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            assert getattr(signal.getsignal(signal.SIGINT), "__module__", None) != "specgate.plugin"
    """)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_session_starts_when_a_test_asks_for_it(tmp_path):
    proc = _child_pytest(tmp_path, """
        import signal, sys

        def test_uses_specgate(specgate_session):
            assert "specgate.harness.session" in sys.modules
            assert signal.getsignal(signal.SIGTERM).__module__ == "specgate.plugin"  # interrupts tear down engines
    """)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_an_interrupt_that_python_drops_in_a_finalizer_still_stops_the_run(tmp_path):
    """Python prints and drops a KeyboardInterrupt raised inside __del__ (engines free memory with
    gc.collect(), which runs finalizers): the signal is remembered and the next test does not run."""
    proc = _child_pytest(tmp_path, """
        import os, signal

        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)  # SIGINT alike, where it is not ignored
                for _ in range(10000):  # bytecode boundaries: the handler runs here, inside __del__
                    pass

        def test_first(specgate_session):
            Finalized()

        def test_second():
            raise AssertionError("ran after the interrupt")
    """)
    assert proc.returncode == 2, proc.stdout[-2000:]  # pytest's "interrupted"
    assert "ran after the interrupt" not in proc.stdout
