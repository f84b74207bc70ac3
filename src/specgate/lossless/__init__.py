"""Does speculative sampling preserve the target distribution: the reference sampler and exact
distributions (sampling), their test blocks (cases), real engines' rejection samplers on those
blocks (real_samplers), goodness of fit (stats), the target's exact two-token distribution
(target_distribution), and whole engines sampled against it (whole_engine, lab)."""
