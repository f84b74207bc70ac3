"""The error every bad pairings file raises (its own module: the data model and the reader both raise it)."""


class ConfigError(ValueError):
    """A pairings file is invalid; the message names the file, the entry and the field."""
