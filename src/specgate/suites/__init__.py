"""Test suites shipped in the package, run from any repository with specgate installed: the
benchmark (test_benchmark), lossless sampling through whole engines (test_lossless) and vLLM's
rejection sampler on its own (test_distribution).


    pytest --pyargs specgate.suites.test_benchmark --specgate-config my-pairings.toml --specgate-baselines baselines
    pytest --pyargs specgate.suites.test_lossless --specgate-lossless-config my-lossless.toml
    pytest --pyargs specgate.suites.test_distribution

``test_benchmark.py`` is the benchmark: one test per (pairing, method, k, mode, feature) of the
pairings file, judged against the baselines (this repository's benchmarks/ runs the same test).
``test_lossless.py`` samples whole engines at temperature > 0 and judges them against the
target's exact distribution (this repository's tests/lossless/test_lossless_engine.py runs it).
``test_distribution.py`` samples vLLM's rejection sampler on its own, on the device vLLM runs on
(Triton kernels on a GPU), and judges it the same way (tests/lossless/test_distribution_sampling.py).
"""
