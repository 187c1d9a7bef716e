"""The one error type for data that is missing or malformed."""


class DataNotFoundError(FileNotFoundError):
    """Raised with the path that was looked at and how to provide the data."""
