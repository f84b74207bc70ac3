"""What the test folders share. The tests are grouped like the package's wings (tests/core/,
tests/matrix/, ...; cross-cutting ones in tests/product/); the helper modules stay here in tests/
and import by bare name from any folder, because pytest's default import mode ("prepend") puts
this file's folder on sys.path when it loads it. Repository paths: paths.py.

Fixtures: the shipped CPU matrix (configs/cpu.toml, as it is: no overrides), loaded once per
session. It is shared, so read it only: Pairing's dicts (engine, speculative, tolerances, ...) are
mutable; a test that needs a changed matrix loads its own (``config.load(CPU_CONFIG, overrides)``)
or uses ``dataclasses.replace``.
"""

from types import MappingProxyType

import pytest

from paths import CPU_CONFIG


@pytest.fixture(scope="session")
def cpu_matrix():
    """configs/cpu.toml as shipped."""
    from specgate.matrix import config

    return config.load(CPU_CONFIG)


@pytest.fixture(scope="session")
def cpu_conditions(cpu_matrix):
    """configs/cpu.toml's conditions by id (read-only)."""
    return MappingProxyType({c.id: c for c in cpu_matrix.conditions()})
