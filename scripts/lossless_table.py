"""Print the lossless-sampling table: every pairing x k of a lossless config x every setting, as
shipped and on the reference path (known defects worked around), with p-values, sample size,
the share of requests that drafted, and the smallest TV shift detected with probability 0.99.

    .venv/bin/python scripts/lossless_table.py [configs/lossless-cpu.toml] [samples]
"""

import sys
from pathlib import Path

from specgate.matrix import config
from specgate.engines import known_defects
from specgate.lossless import whole_engine as lossless
from specgate.matrix import prompts
from specgate.engines.pool import EnginePool
from specgate.lossless.target_distribution import two_token_distribution, transformers_forward

path = Path(sys.argv[1] if len(sys.argv) > 1 else "configs/lossless-cpu.toml")
samples = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
pool, forwards, exact = EnginePool(stage_timers=False), {}, {}
print("| condition | setting | path | drafted | joint p | token-2 p | samples | detectable TV | verdict |")
print("|---|---|---|---|---|---|---|---|---|")
try:
    for c in [c for c in config.load(path).conditions() if not c.is_control]:
        for setting in lossless.SETTINGS:
            for path_name in ("as shipped", "reference"):
                engine = pool.get(c)
                text = prompts.render_for(c.pairing, prompts.for_pairing(c.pairing)[:1], None)[0]
                ids = engine.llm.get_tokenizer().encode(text)
                key = (c.pairing.target, tuple(ids), setting.name)
                if key not in exact:
                    forward = forwards.setdefault(c.pairing.target, transformers_forward(c.pairing.target))
                    exact[key] = two_token_distribution(forward, ids, setting)
                ctx = known_defects.reference_path() if path_name == "reference" else None
                try:
                    if ctx:
                        with ctx:
                            sample = lossless.sample_pairs(engine.llm, ids, setting, samples, seed=1000)
                    else:
                        sample = lossless.sample_pairs(engine.llm, ids, setting, samples, seed=1000)
                except lossless.Unsupported as exc:
                    print(f"| {c.id} | {setting.name} | {path_name} | - | - | - | - | - | unsupported: {exc} |")
                    continue
                except Exception as exc:  # noqa: BLE001 - a crash is a row of the table
                    engine.broken = True
                    print(f"| {c.id} | {setting.name} | {path_name} | - | - | - | - | - | engine crashed: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[-1][:90]} |")
                    continue
                j = lossless.judge_exact(exact[key], sample)
                impossible = f" ({len(j.joint.impossible)} impossible outcomes)" if j.joint.impossible else ""
                print(f"| {c.id} | {setting.name} | {path_name} | {sample.drafted_share:.0%} | {j.joint.p_value:.2g}"
                      f"{impossible} | {j.second.p_value:.2g} | {samples} | {j.detectable_tv:.3f} | "
                      f"{'pass' if j.passed else 'FAIL'} |", flush=True)
finally:
    pool.close()
