"""Errors for data that is missing or malformed: each names the path and what was expected."""


class DataError(ValueError):
    """Data that exists but cannot be used (unreadable files, mismatched class folders)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """Raised with the path that was looked at and how to provide the data."""
