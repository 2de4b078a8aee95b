"""Errors a user can act on.

Every ``FoedusError`` carries a one-line message that says what went wrong, where (file,
country, year) and what to do. The CLI prints it and exits with code 2; notebook users see
the exception. Anything else escaping is a bug.
"""


class FoedusError(Exception):
    """An error caused by input or environment, with a message meant for the user."""


class DataError(FoedusError):
    """A raw file is missing, corrupted, unreadable or fails its checksum."""


class ConfigError(FoedusError):
    """The project root, the manifest or a configured path cannot be found."""


class InvalidInput(FoedusError):
    """An argument is outside what foedus accepts (a year, a label spec, ...)."""


class StateNotFound(InvalidInput):
    """A state name, abbreviation or code matches no state, or more than one."""

    def __init__(self, message: str, candidates: list[str] | None = None):
        super().__init__(message)
        self.candidates = candidates or []
