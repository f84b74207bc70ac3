"""Serving mode: Prometheus parsing, the `vllm serve` command line, and a real server on loopback."""

import pytest

from paths import CONFIGS
from specgate.core.metrics import summarize
from specgate.core.prometheus import spec_counters
from specgate.core.results import SpecCounters
from specgate.engines.serving import Server, serve_argv
from specgate.matrix import config, prompts


EXPOSITION = """\
# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="specgate"} 40.0
vllm:spec_decode_num_drafts_total{engine="1",model_name="team}model"} 2.0
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="specgate"} 126.0
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="specgate"} 70.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="specgate",position="1"} 25.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="specgate",position="0"} 33.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="specgate",position="2"} 12.0
vllm:spec_decode_num_drafts_created{engine="0",model_name="specgate"} 1.7e9
vllm:generation_tokens_total{engine="0",model_name="specgate"} 500.0
"""


def test_prometheus_counters_are_summed_over_engines_and_ordered_by_position():
    # A label value may hold '}' (a served model name): the second engine's drafts still count.
    assert spec_counters(EXPOSITION) == SpecCounters(42, 126, 70, (33, 25, 12))
    assert spec_counters("# nothing yet\n") == SpecCounters()


@pytest.fixture(scope="module")
def serving_conditions():
    matrix = config.load(CONFIGS / "cpu-serving.toml",
                         {"num_prompts": 8, "max_new_tokens": 16, "concurrency": [1, 4]})
    return {c.id: c for c in matrix.conditions()}


def test_serving_conditions_and_command_line(serving_conditions):
    assert list(serving_conditions)[:2] == ["fixture-nospec-serving-c1", "fixture-nospec-serving-c4"]
    c = serving_conditions["fixture-aligned-draft_model-k3-serving-c4"]
    argv = serve_argv(c, 8123)
    assert argv[2:5] == ["vllm.entrypoints.launchers.api_server.entry", "--model", c.pairing.target]
    assert "--enforce-eager" in argv
    value = lambda flag: argv[argv.index(flag) + 1]  # noqa: E731
    assert value("--port") == "8123" and value("--host") == "127.0.0.1"
    assert value("--kv-cache-memory-bytes") == "268435456" and value("--max-model-len") == "1024"
    assert '"num_speculative_tokens": 3' in value("--speculative-config")
    assert "--disable-log-stats" not in argv  # the counters come from the server's stats


def test_a_server_runs_like_an_engine():
    """One rounds loop for both, called the same way (a serving run once failed on `paired=`)."""
    import inspect

    from specgate.engines.backend import Backend
    from specgate.engines.engine import Engine

    assert Server.run is Engine.run is Backend.run
    assert list(inspect.signature(Server.run_once).parameters) == list(inspect.signature(Engine.run_once).parameters)


@pytest.mark.engine
def test_a_real_server_on_loopback_reports_acceptance_at_each_concurrency(serving_conditions):
    c1 = serving_conditions["fixture-aligned-draft_model-k3-serving-c1"]
    c4 = serving_conditions["fixture-aligned-draft_model-k3-serving-c4"]
    sample = prompts.for_pairing(c1.pairing)
    with Server(c1) as server:
        served = server.served
        runs = [server.run_once(sample, c) for c in (c1, c4)]
    assert server.served is None and served.process.poll() is not None  # stopped, with its process group
    for run in runs:
        assert [r.output_tokens for r in run.requests] == [16] * 8  # ignore_eos: every request runs to max
        assert all(r.latency_s > 0 and r.prompt_tokens > 0 for r in run.requests)
        # Streamed: the first token comes before the end, and the chunk gaps fit in the rest.
        assert all(0 < r.ttft_s < r.latency_s and r.itl_s and sum(r.itl_s) <= r.latency_s - r.ttft_s + 1e-3
                   for r in run.requests)
        # With speculation several tokens arrive in one chunk: fewer gaps than tokens.
        assert sum(len(r.itl_s) for r in run.requests) < sum(r.output_tokens - 1 for r in run.requests)
        m = summarize(run)
        assert 0 < m.ttft_p50_ms <= m.ttft_p90_ms <= m.ttft_p99_ms and 0 < m.itl_p50_ms <= m.itl_p99_ms
        c = run.counters
        assert c.drafts > 0 and c.draft_tokens == 3 * c.drafts and 0 < c.accepted <= c.draft_tokens
        assert sum(c.accepted_per_pos) == c.accepted
    # Same prompts, temperature 0: the same tokens and the same drafts accepted at any concurrency
    # (at 4 in flight, requests join and leave while others decode: continuous batching).
    assert all(len(r.output_token_ids) == 16 for r in runs[0].requests)
    assert [r.output_token_ids for r in runs[1].requests] == [r.output_token_ids for r in runs[0].requests]
    assert runs[0].counters == runs[1].counters
