"""movierec: a movie recommender built on PyTorch."""

__version__ = "0.1.0"
