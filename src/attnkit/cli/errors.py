"""Errors a user can cause and fix."""


class UserError(Exception):
    """Printed as one line by the ``attnkit`` command, exit code 2."""
