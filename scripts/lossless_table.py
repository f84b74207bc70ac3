"""Print the lossless-sampling table: every pairing x k of a lossless config x every setting, as
shipped and on the reference path (known defects worked around), with p-values, sample size,
the share of requests that drafted, and the smallest TV shift detected with probability 0.99.
Always against the target's exact distribution (specgate.lossless.lab.LosslessLab.against_exact).

    .venv/bin/python scripts/lossless_table.py [configs/lossless-cpu.toml] [samples]
    .venv/bin/python scripts/lossless_table.py --visibility   # each setting's own effect, no sampling
"""

import argparse
import contextlib
from pathlib import Path

from specgate.engines import known_defects
from specgate.harness.options import LOSSLESS_CONFIG, LOSSLESS_SAMPLES
from specgate.lossless import whole_engine
from specgate.lossless.lab import LosslessLab, SETTINGS

PATHS = {"as shipped": contextlib.nullcontext, "reference": known_defects.reference_path}


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, default=LOSSLESS_CONFIG,
                        help=f"lossless pairings file (default: {LOSSLESS_CONFIG})")
    parser.add_argument("samples", nargs="?", type=int, default=LOSSLESS_SAMPLES,
                        help=f"continuations sampled per cell (default: {LOSSLESS_SAMPLES})")
    parser.add_argument("--visibility", action="store_true",
                        help="print, per prompt and setting, how far the setting moves the speculative position "
                             "and the shift a cell detects, instead of sampling")
    return parser.parse_args(argv)


def row(lab: LosslessLab, cid: str, setting: str, path: str) -> str:
    """One line of the table: the cell's judgement, or why there is none."""
    lab.engine(cid)  # built outside the reference path: its probes call the kernels an engine registers
    try:
        with PATHS[path]():
            sample = lab.sample(cid, setting)
    except whole_engine.Unsupported as exc:
        return f"| {cid} | {setting} | {path} | - | - | - | - | - | unsupported: {exc} |"
    except Exception as exc:  # noqa: BLE001 - a crash is a row of the table; the lab rebuilds the engine
        return (f"| {cid} | {setting} | {path} | - | - | - | - | - | engine crashed: "
                f"{type(exc).__name__}: {str(exc).splitlines()[-1][:90]} |")
    j = lab.against_exact(cid, setting, sample)
    impossible = f" ({len(j.joint.impossible)} impossible outcomes)" if j.joint.impossible else ""
    return (f"| {cid} | {setting} | {path} | {sample.drafted_share:.0%} | {j.joint.p_value:.2g}{impossible} | "
            f"{j.second.p_value:.2g} | {lab.samples} | {j.detectable_tv:.3f} | {'pass' if j.passed else 'FAIL'} |")


def main(argv=None) -> None:
    args = parse(argv)
    lab = LosslessLab(args.config, args.samples)
    if args.visibility:
        return visibility(lab)
    print("| condition | setting | path | drafted | joint p | token-2 p | samples | detectable TV | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for cid in [cid for cid, c in lab.conditions.items() if not c.is_control]:
            for setting in SETTINGS:
                for path in PATHS:
                    print(row(lab, cid, setting, path), flush=True)
    finally:
        lab.close()


def visibility(lab: LosslessLab) -> None:
    """One row per (target, prompt, setting): the setting's shift at the speculative position against
    the smallest shift a cell of lab.samples detects (the test demands twice it)."""
    print("| target, prompt | setting | shift when ignored at token 2 (TV, as the test bins it) | detectable TV | "
          "ratio | test |")
    print("|---|---|---|---|---|---|")
    done = set()
    try:
        for cid, c in lab.conditions.items():
            for setting in SETTINGS:
                key = (c.pairing.target, tuple(lab.prompt_ids(cid, setting)), setting)
                seen = None if c.is_control or key in done else lab.visibility(cid, setting)
                done.add(key)
                if seen:
                    where = f"{Path(c.pairing.target).name}, {SETTINGS[setting].prompt and 'own' or c.pairing.prompt_set}"
                    print(f"| {where} ({cid}) | {setting} | {seen[0]:.3f} | {seen[1]:.3f} | {seen[0] / seen[1]:.1f} | "
                          f"{seen[2]} |", flush=True)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
