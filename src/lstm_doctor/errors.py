"""Errors that reach the user as one clear paragraph (exit status 2 from the CLI)."""


class InputError(ValueError):
    """The user's data, setup file or options cannot be used as given.

    The message says what was wrong and how to fix it; the CLI prints it without
    a traceback.
    """
