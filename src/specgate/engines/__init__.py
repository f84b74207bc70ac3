"""The wing that builds and drives vLLM: one in-process engine (engine) and a server (serving) over
what they share (backend), vLLM's arguments (arguments) and outputs (outputs), its errors
(errors), the process they run in (process), continuous batching (arrivals), a frequent token
named EOS while a cell runs (eos), what is timed
beside each request (beside, reference_timing), progress lines (progress), the live engines
(pool), reaching the model runner (runner), stage timers (timing), calls per request (code_path),
known vLLM defects probed on the installed build (known_defects) and version work-arounds
(vllm_compat)."""
