"""Errors the pipelines raise for bad files and folders; their messages name the path and the reason.

Light on purpose (no torch): the CLI imports it to turn these into one-line errors.
"""


class PipelineError(ValueError):
    """Bad input to a pipeline, already explained in its message."""


class ModelFolderError(PipelineError):
    """A model folder that is missing, incomplete or of the wrong kind."""


class MediaFileError(PipelineError):
    """An audio or video file that cannot be read or written, with the reason."""
