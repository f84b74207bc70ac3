"""How a failure inside vLLM is reported: one EngineError naming the condition and keeping vLLM's
own words, and whether vLLM refused the configuration (a feature cell's "unsupported") or crashed."""

from __future__ import annotations


class EngineError(RuntimeError):
    """An engine failed to build or to run; the message names the condition and keeps vLLM's reason.
    ``refused``: vLLM rejected the configuration or the request (a validation error), as opposed
    to crashing while running it; a feature cell reports it as unsupported (matrix/features.py)."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused

    def unsupported(self, condition) -> bool:
        """Whether this makes ``condition`` a feature cell vLLM refuses: a verdict of its own
        ("unsupported", kept in the baseline like a figure), not an error."""
        return bool(condition.feature) and self.refused


def refused(exc: BaseException) -> bool:
    # vLLM validates engine arguments (pydantic, ValueError) and requests (VLLMValidationError, a
    # ValueError) before running anything; NotImplementedError marks an unsupported combination.
    return (isinstance(exc, (ValueError, NotImplementedError))
            or any(c.__name__ == "VLLMClientError" for c in type(exc).__mro__))


def reason(exc: Exception) -> str:
    """vLLM's own words, on one line: pydantic's validation messages, else the exception's last line."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(str(e.get("msg", e)) for e in errors())
        except Exception:  # noqa: BLE001 - not pydantic after all
            pass
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.strip().startswith("For further information")]
    return lines[-1] if lines else type(exc).__name__
