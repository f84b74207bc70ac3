"""Structure that must not erode: no import cycles inside specgate, and a plugin that stays
inert (no specgate modules imported, no signal handler) in pytest runs that do not use it."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "specgate"


def import_graph() -> dict[str, set[str]]:
    """Module -> the specgate modules it imports anywhere (top level or inside functions)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("specgate."):
                found.add(node.module.split(".")[1])
        graph[path.stem] = {m for m in found if m in modules and m != path.stem}
    return graph


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
    assert graph["engine"] and "serving" not in graph["engine"] and "engine" in graph["serving"]


def _child_pytest(tmp_path, test_body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_other.py").write_text(textwrap.dedent(test_body))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_other.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_plugin_is_inert_in_a_run_that_does_not_use_it(tmp_path):
    proc = _child_pytest(tmp_path, """
        import signal, sys

        def test_unrelated(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("specgate")  # loaded through the entry point
            assert "specgate.session" not in sys.modules and "specgate.engine" not in sys.modules
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            assert getattr(signal.getsignal(signal.SIGINT), "__module__", None) != "specgate.plugin"
    """)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_the_session_starts_when_a_test_asks_for_it(tmp_path):
    proc = _child_pytest(tmp_path, """
        import signal, sys

        def test_uses_specgate(specgate_session):
            assert "specgate.session" in sys.modules
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
