"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (bad path, bad file, bad option). The message says what to do."""
