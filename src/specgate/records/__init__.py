"""What is stored between runs: the results document and atomic JSON writes (document), baseline
records and their files (baselines), a saved run read as records (from_results), schema-1
migration (migrate), model identity by content (fingerprint), the hardware tag and versions
(environment), shards merged into one run (merge), and the plan of GPU time that sizes each shard's
runner (plan)."""
