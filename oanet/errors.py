"""The one base class of errors a user can fix (bad data, layout, params, install).

The CLI prints these as one line and exits with status 2, instead of a traceback.
"""


class OanetError(Exception):
    """A problem with the user's input or setup, explained in the message."""
