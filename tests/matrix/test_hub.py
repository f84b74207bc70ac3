"""A hub id the hub does not have, or a gated one this machine may not read, is found by
validate when the hub answers. The hub cannot be reached from this project's machines, so its
answers are stood in for at huggingface_hub's own API (HfApi.auth_check), the one thing mocked."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from specgate.matrix import hub


def _answer(monkeypatch, error_class=None, status=200):
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: True)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    asked = []

    def auth_check(self, repo_id, **kwargs):
        asked.append(repo_id)
        if error_class is not None:
            response = httpx2.Response(status, request=httpx2.Request("GET", f"https://huggingface.co/api/models/{repo_id}"))
            raise error_class(f"{status} for {repo_id}", response=response)

    monkeypatch.setattr(HfApi, "auth_check", auth_check)
    return asked


def test_a_model_the_hub_does_not_have_is_named_with_the_fix(monkeypatch):
    asked = _answer(monkeypatch, RepositoryNotFoundError, 404)
    with pytest.raises(hub.HubError, match=r"target 'meta-llama/Llama-3.1-8B-Instrcut': the hub has no such model.*spelling"):
        hub.model_dir("meta-llama/Llama-3.1-8B-Instrcut", "target")
    assert asked == ["meta-llama/Llama-3.1-8B-Instrcut"]


def test_a_gated_model_without_access_says_accept_the_licence_and_set_the_token(monkeypatch):
    _answer(monkeypatch, GatedRepoError, 403)
    with pytest.raises(hub.HubError, match=r"draft 'meta-llama/Llama-3.2-1B' is gated.*huggingface.co/meta-llama/Llama-3.2-1B.*HF_TOKEN"):
        hub.model_dir("meta-llama/Llama-3.2-1B", "draft")


def test_a_readable_model_passes_and_vllm_downloads_it(monkeypatch):
    asked = _answer(monkeypatch)
    assert hub.model_dir("someone/open-model", "target") is None
    assert asked == ["someone/open-model"]


def test_a_local_path_never_asks_the_hub(monkeypatch, tmp_path):
    asked = _answer(monkeypatch, RepositoryNotFoundError, 404)
    assert hub.model_dir(str(tmp_path), "target") == tmp_path
    assert asked == []
