"""User-facing errors: one line, naming the file and what is wrong."""


class LmfError(Exception):
    """Bad input or a refused operation; the CLI prints it as one line and exits with code 2."""


class DataError(LmfError):
    """A data file is missing or malformed."""


class Interrupted(LmfError):
    """Work stopped by SIGINT/SIGTERM; the message says what was kept and how to go on. The CLI
    prints it and exits with code 130."""
