"""The error of every trainer's data readers."""


class DataError(ValueError):
    """A dataset that cannot be used as given; the message names the file, line or folder."""
