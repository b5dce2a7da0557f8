"""User-facing errors.

Anything raised as a :class:`DMLBenchError` is a problem with the user's input (a config, a
command-line value, a data set on disk). The command line prints it as one line and exits with
code 2, without a traceback. Everything else is a bug and keeps its traceback.
"""


class DMLBenchError(Exception):
    """A problem with the user's input, reported as one line."""


class ConfigError(DMLBenchError):
    """Malformed YAML, a bad command-line value, an unknown key suffix or class name."""


class RegistryError(ConfigError):
    """A class name that no registry source knows (the message lists the nearest names)."""


class DatasetError(DMLBenchError):
    """A data set that is missing, incomplete or corrupt on disk."""


class SplitError(DMLBenchError):
    """A split that cannot be made (more folds than classes, an empty split, overlap)."""


class ExperimentError(DMLBenchError):
    """An experiment folder in a state that does not fit the request (exists, not found, ...)."""


class CorruptFileError(ExperimentError):
    """A file of an experiment folder that cannot be read (truncated, overwritten, edited)."""


class StorageError(ExperimentError):
    """The disk refused a write: no space left, a read-only file system, no permission."""

    def __init__(self, message: str, read_only: bool = False) -> None:
        super().__init__(message)
        self.read_only = read_only  # a resume there cannot work either
