"""Every specgate option of a pytest run, read once into a frozen object (as pytest-benchmark's
session does): command-line flags, their defaults and ini fallbacks, and the paths they resolve
to; the benchmark session and the lossless suite read the same object (Options.of). A malformed
value (a shard, a server URL) is a usage error here, when it is first read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOSSLESS_CONFIG = Path("configs") / "lossless-cpu.toml"  # below the rootdir
LOSSLESS_SAMPLES = 3000
_OPTIONS = pytest.StashKey["Options"]()


@dataclass(frozen=True)
class Options:
    config: Path  # the pairings file
    overrides: dict = field(default_factory=dict)  # num_prompts / max_new_tokens / rounds for every pairing
    pairings: tuple[str, ...] = ()  # --specgate-pairing: run only these
    ks: tuple[int, ...] = ()  # --specgate-k: run only the conditions at these k
    shard: tuple[int, int] | None = None  # (index, count)
    plan: Path | None = None  # --specgate-plan: the shard's pairings come from this plan (`specgate plan`)
    results: Path | None = None
    update_baselines: bool = False
    strict: bool = False
    baselines: Path = Path("baselines")
    hardware_tag: str | None = None
    github_benchmark: Path | None = None
    reports: Path | None = None  # None: --specgate-no-reports
    server_urls: dict = field(default_factory=dict)  # condition id -> running server
    stage_timers: bool = True
    stage_clock: str | None = None
    lossless_config: Path = LOSSLESS_CONFIG  # the lossless suite's pairings file; the suite says if it is missing
    lossless_samples: int = LOSSLESS_SAMPLES  # continuations sampled per lossless cell

    @classmethod
    def of(cls, config: pytest.Config) -> Options:
        """This run's options, read on first use and the same object after."""
        if _OPTIONS not in config.stash:
            config.stash[_OPTIONS] = cls.read(config)
        return config.stash[_OPTIONS]

    @classmethod
    def read(cls, config: pytest.Config) -> Options:
        opt = config.getoption

        def path(option: str, ini: str) -> Path:
            found = Path(opt(option) or config.getini(ini))
            return found if found.is_absolute() or found.exists() else config.rootpath / found

        overrides = {key: value for key, value in [("num_prompts", opt("--specgate-num-prompts")),
                                                   ("max_new_tokens", opt("--specgate-max-new-tokens")),
                                                   ("rounds", opt("--specgate-rounds"))] if value is not None}
        for key, value in overrides.items():  # the flag's fault, not the pairings file's
            if value < 1:
                raise pytest.UsageError(f"--specgate-{key.replace('_', '-')} {value}: must be 1 or more")
        return cls(
            config=path("--specgate-config", "specgate_config"), overrides=overrides,
            pairings=tuple(opt("--specgate-pairing") or ()), ks=parse_ks(opt("--specgate-k") or []),
            shard=parse_shard(opt("--specgate-shard")), plan=parse_plan(opt("--specgate-plan"), opt("--specgate-shard")),
            results=Path(opt("--specgate-results")) if opt("--specgate-results") else None,
            update_baselines=bool(opt("--specgate-update-baselines")), strict=bool(opt("--specgate-strict")),
            baselines=path("--specgate-baselines", "specgate_baselines"), hardware_tag=opt("--specgate-hardware-tag"),
            github_benchmark=Path(opt("--specgate-github-benchmark")) if opt("--specgate-github-benchmark") else None,
            reports=None if opt("--specgate-no-reports") else path("--specgate-reports", "specgate_reports"),
            server_urls=parse_server_urls(opt("--specgate-server-url") or []),
            stage_timers=not opt("--specgate-no-stage-timers"), stage_clock=opt("--specgate-stage-clock"),
            # As given (relative to the working directory); the default is the rootdir's.
            lossless_config=Path(opt("--specgate-lossless-config") or config.rootpath / LOSSLESS_CONFIG),
            lossless_samples=int(opt("--specgate-lossless-samples") or LOSSLESS_SAMPLES),
        )


def parse_ks(values: list[str]) -> tuple[int, ...]:
    """--specgate-k 1,3 --specgate-k 5 -> (1, 3, 5)."""
    found = []
    for value in values:
        for part in value.split(","):
            if not part.strip().isdigit() or int(part) < 1:
                raise pytest.UsageError(f"--specgate-k {value!r}: expected positive integers, e.g. --specgate-k 1,3")
            found.append(int(part))
    return tuple(sorted(set(found)))


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, sep, count = value.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise pytest.UsageError(f"--specgate-shard {value!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(index), int(count)


def parse_plan(value: str | None, shard: str | None) -> Path | None:
    if value is None:
        return None
    if shard is None:
        raise pytest.UsageError(f"--specgate-plan {value}: give the shard of the plan to run with --specgate-shard I/N")
    return Path(value)


def parse_server_urls(values: list[str]) -> dict[str, str]:
    urls = {}
    for value in values:
        cid, sep, url = value.partition("=")
        if not sep or not cid or not url.startswith(("http://", "https://")):
            raise pytest.UsageError(f"--specgate-server-url {value!r}: expected CONDITION_ID=http://HOST:PORT")
        urls[cid] = url
    return urls
