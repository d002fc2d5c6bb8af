"""The error every part of devstack.wordpress raises."""


class WordPressError(RuntimeError):
    """The local WordPress could not be brought up, driven or taken down."""
