"""Every tolerance a pairings file accepts is read by a check, and the docs list each with its default."""

import ast
import re

import pytest

from paths import PACKAGE, ROOT
from specgate.core.tolerances import DEFAULTS, TOLERANCES
from specgate.matrix import config

GATE = PACKAGE / "gate"


def keys_read_by_checks() -> set[str]:
    """Keys read from a tolerances mapping in the gate: ``tolerances["k"]``, ``tol["k"]`` or
    ``....tolerances.get("k")``."""
    found = set()
    for path in GATE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                target, key = node.value, node.slice.value
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                target, key = node.func.value, node.args[0].value
            else:
                continue
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name in ("tolerances", "tol"):
                found.add(key)
    return found


def test_every_tolerance_is_read_by_a_check():
    unread = set(TOLERANCES) - keys_read_by_checks()
    assert not unread, f"tolerances no check reads (remove them or judge them): {sorted(unread)}"


def test_the_reader_sees_a_tolerance_that_nothing_reads():
    assert "tokens_per_s" not in keys_read_by_checks()  # the batch throughput check was removed with its key


def test_a_tolerance_that_no_check_reads_is_refused_in_a_pairings_file(tmp_path):
    doc = {"pairing": [{"name": "p", "target": "t", "method": "ngram", "k": 2, "tolerances": {"tokens_per_s": 0.1}}]}
    with pytest.raises(config.ConfigError, match="'tokens_per_s' was removed: batch throughput is not judged"):
        config.parse(doc, tmp_path / "p.toml")


def test_docs_list_every_tolerance_with_its_default():
    row = next(line for line in (ROOT / "docs" / "pairings.md").read_text().splitlines()
               if line.startswith("| `tolerances` |"))
    for key in TOLERANCES:
        assert f"`{key}`" in row, key
    for key, default in DEFAULTS.items():
        assert re.search(rf"`{key}` \([^`]*default {default:g}\)", row), (key, default)
