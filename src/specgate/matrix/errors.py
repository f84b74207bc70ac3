"""The error every bad pairings file raises (its own module: the data model and the reader both raise
it), and the "did you mean" every message about an unknown name adds."""

import difflib


class ConfigError(ValueError):
    """A pairings file is invalid; the message names the file, the entry and the field."""


class UnknownPairings(ConfigError):
    """Pairings asked for by name (--specgate-pairing) that the file does not have."""


def did_you_mean(name, known) -> str:
    """" (did you mean 'x'?)" for the closest of ``known`` to a mistyped ``name``, else ""."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""
