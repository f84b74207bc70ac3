"""The error every bad pairings file raises (its own module: the data model and the reader both raise it)."""


class ConfigError(ValueError):
    """A pairings file is invalid; the message names the file, the entry and the field."""


class UnknownPairings(ConfigError):
    """Pairings asked for by name (--specgate-pairing) that the file does not have."""
