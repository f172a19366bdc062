"""The errors every stage raises; the command line maps them to exit codes."""


class GitopsMLError(Exception):
    """Base of the engine's errors. ``exit_code`` is what the command line exits with."""

    exit_code = 1


class ConfigError(GitopsMLError):
    """The project spec or a command's arguments are wrong: bad usage, exit 2."""

    exit_code = 2


class DataError(GitopsMLError):
    """A data file cannot be read, or is empty: a failed check, exit 1."""


class CheckFailed(GitopsMLError):
    """A check (validation, a gate, a verification) failed: exit 1.

    ``result`` carries the typed outcome so that ``--json`` can still print it.
    """

    def __init__(self, message: str, result: object = None):
        super().__init__(message)
        self.result = result


class TrainingError(GitopsMLError):
    """The data meets the contract but the model cannot be built, fitted or scored on it: exit 1.

    Raised before anything reaches MLflow, so nothing is logged or registered.
    """
