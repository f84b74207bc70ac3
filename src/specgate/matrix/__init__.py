"""The pairings file -> the conditions to run: the data model of pairings, conditions and their
run order (conditions), reading and validating the file (config, errors), the feature cells
(features), the prompt sets (prompts), the Hugging Face hub and cache (hub), what the installed vLLM
accepts (vllm_accepts), a speculator head against its method and target (heads), the checks that
need no engine (preflight), and a condition's GPU time by a stated model (cost)."""
