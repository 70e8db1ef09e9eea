"""The run folder: what a training run leaves behind, and how it is read back (``movierec.artifact.run``)."""
