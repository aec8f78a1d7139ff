"""Errors the user can act on.

Each carries a one-line message naming the field or file, what it held and what is
allowed; the command-line entry points print it on stderr and exit non-zero.
"""


class CompressError(Exception):
    """Base class for every error that is the user's to fix (bad config, bad data)."""

    exit_code = 2


class ConfigError(CompressError):
    """A config value is out of range or of the wrong kind."""


class DataError(CompressError):
    """A data file is missing, unreadable, truncated or corrupt."""


class StoreError(CompressError):
    """A study storage or tracking store cannot be reached."""


class InterfaceError(CompressError):
    """A Core ML model's input cannot take the data, or its outputs cannot be read as class scores."""
