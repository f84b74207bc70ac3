"""This repository's benchmark is the one shipped in the package (specgate.suites.test_benchmark),
so `make bench` and `pytest --pyargs specgate.suites` run the same test."""

from specgate.suites.test_benchmark import test_speculative  # noqa: F401
