"""User-facing errors: the CLI prints their message without a traceback."""

from __future__ import annotations


class MedtransError(Exception):
    """An expected problem with the user's input, config or files; the message says what and where."""


class VolumeReadError(MedtransError):
    """A scan could not be read (missing, corrupt, truncated, unsupported, inconsistent series)."""


class ConfigError(MedtransError):
    """A config file has an unknown key, a wrong type or an invalid value."""


class CheckpointError(MedtransError):
    """A checkpoint is missing, unsafe to load, or does not match the expected model."""
