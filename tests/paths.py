"""Where things are in this repository, for the tests in every folder below tests/ (imported by
bare name: tests/conftest.py puts tests/ on sys.path)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "specgate"
TESTS = ROOT / "tests"
BENCHMARKS = ROOT / "benchmarks"
CONFIGS = ROOT / "configs"
CPU_CONFIG = CONFIGS / "cpu.toml"
FIXTURE_MODELS = ROOT / "models" / "fixture"
