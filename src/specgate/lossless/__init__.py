"""Does speculative sampling preserve the target distribution: the reference sampler and exact
distributions (sampling), their test blocks (cases), real engines' rejection samplers on those
blocks (real_samplers), goodness of fit (stats), the target's exact two-token distribution
(target_distribution), whole engines sampled against it (whole_engine, lab), and the logprobs those
engines report at temperature > 0 against the target's own (logprobs)."""
