"""What is stored between runs: the results document, baseline records and their files (written atomically), schema migration, model fingerprints, the hardware tag, and merging shards."""
