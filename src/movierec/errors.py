"""The project's one error type for problems a user can fix.

Every ``MovieRecError`` carries a single sentence that names the bad value and what would be valid.
The CLI prints it and exits with code 2; the service turns it into a 4xx answer.
"""


class MovieRecError(Exception):
    """A problem with the user's input, files or environment, explained in one sentence."""


class DataError(MovieRecError):
    """A ratings, movies or tags file that cannot be read as MovieLens data."""


class ArtifactError(MovieRecError):
    """A run folder or cached artifact that is missing, damaged or of an unknown format."""


class DownloadError(MovieRecError):
    """A download that failed or whose checksum did not match."""
