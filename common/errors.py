"""The one exception type for input a user can fix; the CLI turns it into a message and a non-zero exit."""


class UserInputError(Exception):
    """Bad input: a missing column, an unknown model, an empty file. The message says what and where."""
