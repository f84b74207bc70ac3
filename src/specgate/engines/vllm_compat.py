"""Work-arounds for known vLLM version quirks, each with the reason and where it lives upstream."""

from __future__ import annotations


def guard_llvmlite_against_kernel_scan() -> None:
    """Let several in-process engines be built after an ngram engine (vLLM 0.32 on CPU).

    Each CPU engine start re-registers kernel overrides, and vLLM's scan
    (vllm/triton_utils/dispatcher.py, _rebind_kernels) calls vars() on every module attribute
    that has a __dict__. llvmlite's ``ffi.lib`` (loaded by numba, which the ngram proposer
    imports) answers *any* attribute, __dict__ included, with a function wrapper, so every
    engine built after the first ngram engine failed with "'_lib_fn_wrapper' object has no
    attribute 'get'". Dunder lookups on it now fail as on an ordinary object.
    """
    try:
        from llvmlite.binding import ffi
    except ImportError:
        return
    wrapper = getattr(ffi, "_lib_wrapper", None)
    if wrapper is None or getattr(wrapper, "_specgate_guarded", False):
        return
    original = wrapper.__getattr__

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return original(self, name)

    wrapper.__getattr__ = __getattr__
    wrapper._specgate_guarded = True
