"""The shipped distribution suite (specgate.suites.test_distribution): specgate's reference,
vLLM's rejection sampler and transformers' speculative sampling, sampled and G-tested against the
exact target distribution. Planted sampler bugs that it must reject: test_distribution_mutants.py."""

from specgate.suites.test_distribution import (sampler,  # noqa: F401
                                               test_distribution_sampler_outcomes_match_exact_distribution)
